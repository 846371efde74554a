"""One error shape for the whole API: ``{"detail": ..., "code": ...}`` (+ ``errors`` for fields)."""

from rest_framework import exceptions, status
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

from apps.core.errors import ApplicationError
from apps.core.queueing import QueueUnavailable
from apps.core.storage import StorageUnavailable


def _code_of(exc: exceptions.APIException, data) -> str:
    detail = data.get("detail") if isinstance(data, dict) else None
    return getattr(detail, "code", None) or exc.default_code


def _first_problem(errors: dict) -> str:
    field, messages = next(iter(errors.items()), ("non_field_errors", ["Invalid input."]))
    message = messages[0] if isinstance(messages, list) and messages else messages
    return str(message) if field == "non_field_errors" else f"{field}: {message}"


def _api_error(error: ApplicationError) -> exceptions.APIException:
    """The DRF exception of an application error's status: 400 names the field, the others carry a code."""
    if error.status == status.HTTP_400_BAD_REQUEST:
        return exceptions.ValidationError({error.field or api_settings.NON_FIELD_ERRORS_KEY: [error.message]})
    api_error = exceptions.APIException(error.message, code=error.code or DEFAULT_CODES.get(error.status, "error"))
    api_error.status_code = error.status
    return api_error


def exception_handler(exc, context):
    """Reshape DRF's error responses; unexpected errors fall through to the JSON 500 handler."""
    if isinstance(exc, QueueUnavailable | StorageUnavailable):
        exc = ServiceUnavailable(str(exc), wait=exc.retry_after_seconds)
    elif isinstance(exc, ApplicationError):
        exc = _api_error(exc)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(exc, exceptions.ValidationError):
        errors = data if isinstance(data, dict) else {"non_field_errors": data}
        response.data = {"detail": _first_problem(errors), "code": "invalid", "errors": errors}
    else:
        detail = data.get("detail", "") if isinstance(data, dict) else str(data)
        response.data = {"detail": str(detail), "code": _code_of(exc, data)}
        if isinstance(exc, exceptions.Throttled | ServiceUnavailable) and exc.wait is not None:
            response.data["retry_after_seconds"] = int(exc.wait)
    return response


class Conflict(exceptions.APIException):
    """409: the object is not in a state that allows the request (the message says which)."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class PayloadTooLarge(exceptions.APIException):
    """413: the request is over a size limit (the message names it)."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"


class ServiceUnavailable(exceptions.APIException):
    """503: a service the request needs is down or not configured; DRF sends ``wait`` (if any) as Retry-After."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "unavailable"

    def __init__(self, detail: str, *, wait: int | None = None):
        super().__init__(detail)
        self.wait = wait


# The code of an application error that names none: the one DRF's exception of that status gives.
DEFAULT_CODES = {
    error.status_code: error.default_code
    for error in (exceptions.PermissionDenied, exceptions.NotFound, Conflict, PayloadTooLarge)
}
