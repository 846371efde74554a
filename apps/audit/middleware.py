"""Request-level audit events: API writes and refused requests."""

from django.http import HttpRequest, HttpResponse

from .choices import Outcome
from .refusals import is_refusal, refusal_record
from .services import event_record

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def _api_object(request: HttpRequest, response: HttpResponse) -> dict[str, str]:
    match = request.resolver_match
    view_class = getattr(getattr(match, "func", None), "cls", None)
    queryset = getattr(view_class, "queryset", None)
    object_id = (match.kwargs.get("pk") if match else None) or ""
    data = getattr(response, "data", None)
    if not object_id and isinstance(data, dict):
        object_id = data.get("id", "")
    return {
        "object_type": queryset.model._meta.label_lower if queryset is not None else "",
        "object_id": str(object_id),
    }


class AuditMiddleware:
    """Record every API write (method, path, object, status) and count every refusal (see refusals.py)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        details = {"method": request.method, "path": request.path[:500], "status": response.status_code}
        if is_refusal(response):
            refusal_record(request=request, status=response.status_code, details=details)
        elif request.path.startswith("/api/") and request.method not in SAFE_METHODS:
            outcome = Outcome.SUCCESS if response.status_code < 400 else Outcome.FAILURE
            event_record(
                action="api.write", outcome=outcome, changes=details, request=request, **_api_object(request, response)
            )
        return response
