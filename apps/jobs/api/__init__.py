"""API pieces every kind of job shares."""

from drf_spectacular.utils import OpenApiResponse, extend_schema

FINISHED_409 = "It has already finished."


def cancel_schema(job_serializer, *, summary: str, who_may: str, conflict: str = FINISHED_409):
    """The OpenAPI description of a kind's ``POST …/{id}/cancel/``: 200 with the job (``cancelled`` at once when
    it was queued, ``cancelling`` while its worker stops it), 403, 404 and 409."""
    return extend_schema(
        summary=summary,
        request=None,
        responses={
            200: job_serializer,
            403: OpenApiResponse(description=who_may),
            404: OpenApiResponse(description="No such job among those you may see."),
            409: OpenApiResponse(description=conflict),
        },
    )
