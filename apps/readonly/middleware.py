"""While maintenance mode is on, every write through the API and the pages answers 503 with Retry-After.

Reads go on, and so do the few writes that signing in and out needs, the re-authentication that the sudo window
asks for, and the doors that switch maintenance mode itself (else nobody could turn it off from a browser). Health
and metrics are reads. Websockets do not pass through here.

It sits outside the audit middleware: a refused write changes nothing, and a client retrying during a long window
must not fill the audit trail (the trail is itself a write).
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import Resolver404, resolve

from .services import maintenance_mode_current

logger = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

# URL names (namespace:name) that accept writes during maintenance.
ALLOWED_WHILE_READ_ONLY = frozenset(
    {
        # Signing in and out: password, authenticator code, passkey, single sign-on.
        "login",
        "login-otp",
        "passkey-login-begin",
        "passkey-login-complete",
        "logout",
        "oidc-login",
        "oidc-callback",
        "admin:login",
        "admin:logout",
        # The sudo window, which switching maintenance mode off from the admin or the API needs.
        "sudo",
        "passkey-sudo-begin",
        "passkey-sudo-complete",
        # Maintenance mode itself.
        "admin:readonly_maintenancemode_change",
        "admin:readonly_maintenancemode_changelist",
        "admin:readonly_maintenancewindow_add",
        "admin:readonly_maintenancewindow_changelist",
        "readonly:status",
        "readonly:windows",
        "readonly:window-cancel",
    }
)


def write_allowed_during_maintenance(path: str) -> bool:
    """Whether a write to ``path`` goes on in maintenance mode (an unknown path goes on, to its 404)."""
    try:
        match = resolve(path)
    except Resolver404:
        return True
    return match.view_name in ALLOWED_WHILE_READ_ONLY


class ReadOnlyModeMiddleware:
    """Answer writes with 503 + Retry-After while maintenance mode is on: the API's JSON error, or a page."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method in SAFE_METHODS:
            return self.get_response(request)
        status = maintenance_mode_current()
        if not status.active or write_allowed_during_maintenance(request.path_info):
            return self.get_response(request)
        retry_after = status.retry_after_seconds()
        logger.info("maintenance mode refused %s %s", request.method, request.path)
        if request.path_info.startswith("/api/"):
            body = {
                "detail": status.refusal_text(),
                "code": "maintenance",
                "retry_after_seconds": retry_after,
                "maintenance": status.as_dict(),
            }
            response = JsonResponse(body, status=503)
        else:
            context = {"maintenance": status, "retry_after": retry_after, "path": request.path}
            response = render(request, "readonly/refused.html", context, status=503)
        response["Retry-After"] = str(retry_after)
        # Expected refusals, logged above at INFO: Django would log each 503 as an ERROR, flooding the error log
        # for the whole window.
        response._has_been_logged = True
        return response
