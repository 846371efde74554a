"""OpenAPI generation: every operation documents the error responses it can give, with the API's error body.

Views document their success bodies and the errors particular to them (with a description saying when); the
errors every operation shares — bad input, no or a wrong token, too few rights, unknown object, too many
requests — are added here, so that clients (and the schema fuzzing in tests/test_fuzz_api.py) can rely on the
schema listing every status an operation answers with.
"""

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.permissions import AllowAny


class ApiErrorSerializer(serializers.Serializer):
    """The body apps.core.api.errors.exception_handler gives every error (and apps.core.views.errors 404 and 500)."""

    detail = serializers.CharField(help_text="What went wrong, naming the input or limit at fault.")
    code = serializers.CharField(help_text="A stable machine-readable code, e.g. invalid, not_found, throttled.")
    errors = serializers.DictField(
        required=False, help_text="Invalid input only: messages by field (or by item index for batches)."
    )
    retry_after_seconds = serializers.IntegerField(
        required=False, help_text="Throttled requests only: when to try again (also in Retry-After)."
    )


GENERIC_ERRORS = {
    "400": "Invalid input: the detail names the field and the limit; `errors` has every message by field.",
    "401": "No credentials, or an unknown, expired, revoked or address-bound token.",
    "403": "Signed in, but the role, the token's scopes or a missing authenticator do not allow this.",
    "404": "No such object among those the user may see (or no such page of a list).",
    "409": "The object is not in a state that allows this; the detail says which.",
    "429": "Too many requests; `retry_after_seconds` and the Retry-After header say when to try again.",
}
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class ErrorDocumentingAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema, plus the error responses each operation can give, with the error body."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code in self._possible_errors():
            responses.setdefault(code, {"description": GENERIC_ERRORS[code]})
        for code, response in responses.items():
            # Errors a view declared with a description only still answer with the error body.
            if code.startswith(("4", "5")) and "content" not in response:
                body = self._get_response_for_code(ApiErrorSerializer, code, direction=direction)
                response["content"] = body["content"]
        return dict(sorted(responses.items()))

    def _possible_errors(self) -> list[str]:
        codes = []
        query_or_body = self.method in UNSAFE_METHODS or any(p["in"] == "query" for p in self._get_parameters())
        if query_or_body:
            codes.append("400")
        if not all(isinstance(permission, AllowAny) for permission in self.view.get_permissions()):
            codes += ["401", "403"]
        # Path parameters name objects; list pages are 404 past their end.
        if "{" in self.path or self._is_list_view():
            codes.append("404")
        if self.method in UNSAFE_METHODS:
            codes.append("409")
        if self.view.get_throttles():
            codes.append("429")
        return codes


# For the operations that queue work for a worker (apps.core.queueing): declared by their views.
QUEUE_UNAVAILABLE = OpenApiResponse(
    response=ApiErrorSerializer,
    description="The task queue is down: nothing was queued (the new rows are marked failed); retry after the "
    "Retry-After header's seconds.",
)
