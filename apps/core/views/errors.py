"""Error pages: JSON in the API's shape under /api/, plain pages elsewhere, never a traceback."""

import sys

from django.db import OperationalError as DatabaseUnavailable
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import requires_csrf_token
from kombu.exceptions import OperationalError as BrokerUnavailable
from psycopg_pool import PoolTimeout
from redis.exceptions import ConnectionError as RedisUnavailable
from redis.exceptions import TimeoutError as RedisTimeout

from apps.core.queueing import QueueUnavailable
from apps.core.storage import StorageUnavailable

# A service the request needed did not answer (the database or its pool, Redis as cache, broker or channel
# layer, RabbitMQ, the media bucket): not a fault of the request, nor a bug, and it passes. Clients are told to
# retry. QueueUnavailable and StorageUnavailable are for a door that forgot to catch them (the work is already
# marked failed, or nothing was changed).
SERVICE_DOWN_ERRORS = (
    DatabaseUnavailable,
    PoolTimeout,
    BrokerUnavailable,
    RedisUnavailable,
    RedisTimeout,
    QueueUnavailable,
    StorageUnavailable,
)
SERVICE_RETRY_AFTER_SECONDS = 30

ERRORS = {
    400: ("bad_request", "Bad request."),
    403: ("permission_denied", "You do not have permission to perform this action."),
    404: ("not_found", "Not found."),
    500: ("server_error", "Internal server error. The error has been logged."),
    503: (
        "unavailable",
        f"A service the portal needs is not answering. Try again in {SERVICE_RETRY_AFTER_SECONDS} seconds.",
    ),
}


def _error_response(request, status: int):
    code, detail = ERRORS[status]
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": detail, "code": code}, status=status)
    return render(request, "error.html", {"status": status, "detail": detail}, status=status)


@requires_csrf_token
def bad_request(request, exception=None):
    return _error_response(request, 400)


@requires_csrf_token
def permission_denied(request, exception=None):
    return _error_response(request, 403)


@requires_csrf_token
def page_not_found(request, exception=None):
    return _error_response(request, 404)


@requires_csrf_token
def server_error(request):
    """500, or 503 with Retry-After when the error was a service being down (Django calls this while
    handling the exception, so it is still the current one)."""
    if isinstance(sys.exc_info()[1], SERVICE_DOWN_ERRORS):
        response = _error_response(request, 503)
        response["Retry-After"] = str(SERVICE_RETRY_AFTER_SECONDS)
        return response
    return _error_response(request, 500)
