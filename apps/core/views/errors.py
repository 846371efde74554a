"""Error pages: JSON in the API's shape under /api/, plain pages elsewhere, never a traceback."""

from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import requires_csrf_token

ERRORS = {
    400: ("bad_request", "Bad request."),
    403: ("permission_denied", "You do not have permission to perform this action."),
    404: ("not_found", "Not found."),
    500: ("server_error", "Internal server error. The error has been logged."),
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
    return _error_response(request, 500)
