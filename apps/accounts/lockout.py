"""What a locked-out client sees (django-axes' AXES_LOCKOUT_CALLABLE)."""

from __future__ import annotations

from django.conf import settings
from django.http import JsonResponse
from django.shortcuts import render
from django.utils import timezone

from apps.core.request_context import client_ip

from . import selectors

LOCKED_OUT_STATUS = 429


def lockout_response(request, original_response=None, credentials=None):
    """A page saying until when for browsers; 429 JSON with the same for API clients."""
    username = str((credentials or {}).get("username") or getattr(request, "axes_username", "") or "")
    until = selectors.lockout_until(username=username, ip_address=client_ip(request)) if username else None
    if until is None:
        until = timezone.now() + settings.AXES_COOLOFF_TIME
    until_iso = until.isoformat(timespec="seconds")
    if request.path.startswith("/api/"):
        return JsonResponse(
            {
                "detail": (
                    f"Too many failed sign-in attempts; this account is locked from this address until {until_iso}."
                ),
                "code": "locked_out",
                "locked_until": until_iso,
            },
            status=LOCKED_OUT_STATUS,
        )
    context = {"locked_until": until, "failure_limit": settings.AXES_FAILURE_LIMIT}
    return render(request, "accounts/locked_out.html", context, status=LOCKED_OUT_STATUS)
