"""Passkey pages and the JSON doors of the browser ceremonies (static/js/passkeys.js): thin doors into ``passkeys``.

Each ceremony is two POSTs: *begin* returns the options for the browser, *complete* takes the browser's answer.
Errors come back as ``{"detail": ...}`` with a 4xx status; the page shows the detail.
"""

from __future__ import annotations

import json

import django_otp
from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib import auth, messages
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from . import selectors
from .passkeys import (
    PasskeyError,
    passkey_authentication_begin,
    passkey_authentication_complete,
    passkey_registration_begin,
    passkey_registration_complete,
    passkey_remove,
)
from .sudo import sudo_mark, sudo_required
from .views import _pending_clear, _pending_user, _safe_next

# A passwordless sign-in has no password backend to remember; the user is loaded back by Django's own.
PASSWORDLESS_BACKEND = "django.contrib.auth.backends.ModelBackend"
BODY_MAX_BYTES = 64 * 1024


def _refused(message: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"detail": message}, status=status)


def _body(request) -> dict:
    if len(request.body) > BODY_MAX_BYTES:
        raise PasskeyError(f"The request is larger than {BODY_MAX_BYTES // 1024} KB.", status=413)
    try:
        data = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise PasskeyError("The request body must be JSON.") from None
    if not isinstance(data, dict):
        raise PasskeyError("The request body must be a JSON object.")
    return data


def _json_door(view):
    """POST only, never cached; a PasskeyError becomes its JSON refusal."""

    @never_cache
    @require_POST
    def wrapped(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except PasskeyError as exc:
            return _refused(str(exc), exc.status)

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped


def _signed_in(request) -> bool:
    return request.user.is_authenticated


# --- Registration (account page, enrollment page)


@_json_door
def register_begin(request):
    """Start registering a passkey named ``name``; a user with a second factor must have used it this session."""
    if not _signed_in(request):
        return _refused("Sign in first.", 401)
    if selectors.user_has_confirmed_device(user=request.user) and not request.user.is_verified():
        return _refused("Confirm your sign-in with your second factor before adding a passkey.", 403)
    options = passkey_registration_begin(request=request, user=request.user, name=_body(request).get("name", ""))
    return JsonResponse(options)


@_json_door
def register_complete(request):
    if not _signed_in(request):
        return _refused("Sign in first.", 401)
    device = passkey_registration_complete(request=request, user=request.user, data=_body(request))
    if not request.user.is_verified():
        # The first second factor, just proven by creating it: the session counts as verified, as after enrolling
        # an authenticator app.
        django_otp.login(request, device)
        sudo_mark(request)
    messages.success(request, f"Passkey “{device.name}” added.")
    return JsonResponse({"id": device.pk, "name": device.name, "redirect_url": _safe_next(request, reverse("account"))})


@never_cache
@login_required
@sudo_required
@require_http_methods(["GET", "POST"])
def passkey_remove_page(request, pk: int):
    """Remove one passkey, inside the sudo window (GET asks to confirm)."""
    passkey = next((p for p in selectors.passkeys_of(user=request.user) if p.pk == pk), None)
    if passkey is None:
        messages.error(request, "That passkey does not exist (it may have been removed already).")
        return redirect(f"{reverse('account')}#passkeys")
    if request.method == "POST":
        name = passkey_remove(user=request.user, passkey_id=pk, request=request)
        if selectors.mfa_required_for(user=request.user) and not selectors.user_has_confirmed_device(user=request.user):
            messages.warning(request, f"Passkey “{name}” removed. Your role requires a second factor: set one up now.")
            return redirect("mfa-enroll")
        messages.success(request, f"Passkey “{name}” removed; it no longer signs you in.")
        return redirect(f"{reverse('account')}#passkeys")
    return render(request, "accounts/confirm.html", {
        "title": "Remove a passkey",
        "text": f"The passkey “{passkey.name}” will no longer sign you in or confirm sensitive actions.",
        "button": "Remove the passkey",
    })  # fmt: skip


# --- Sign-in: the second step, or passwordless where the role allows it


def _login_user(request):
    """Who is signing in: (user, backend, kind); user None for a passwordless sign-in."""
    if request.user.is_authenticated:
        return request.user, None, "verify"
    user, backend = _pending_user(request)
    if user is not None:
        return user, backend, "second_factor"
    return None, None, "passwordless"


@_json_door
def login_begin(request):
    user, _backend, kind = _login_user(request)
    if kind == "passwordless" and not _passwordless_enabled():
        return _refused("Sign in with your password first.", 403)
    if user is not None and not AxesProxyHandler.is_allowed(request, {"username": user.get_username()}):
        _pending_clear(request)
        return _refused("Too many failed sign-in attempts: this account is locked for now.", 403)
    return JsonResponse(passkey_authentication_begin(request=request, user=user))


@_json_door
def login_complete(request):
    user, backend, kind = _login_user(request)
    if kind == "passwordless" and not _passwordless_enabled():
        return _refused("Sign in with your password first.", 403)
    device = passkey_authentication_complete(request=request, user=user, data=_body(request), purpose=kind)
    if kind == "verify":
        django_otp.login(request, device)
    else:
        _pending_clear(request)
        signing_in = device.user
        signing_in.otp_device = device  # django-otp stores it in the session on login
        auth.login(request, signing_in, backend=backend or PASSWORDLESS_BACKEND)
    sudo_mark(request)  # a passkey with user verification was just used
    return JsonResponse({"redirect_url": _safe_next(request)})


def _passwordless_enabled() -> bool:
    return bool(settings.PASSKEY_PASSWORDLESS_ROLES)


# --- Re-authentication (sudo window)


@_json_door
def sudo_begin(request):
    if not _signed_in(request):
        return _refused("Sign in first.", 401)
    # The passkey stands for the password and the code here: the authenticator must verify the user (PIN, biometric).
    return JsonResponse(passkey_authentication_begin(request=request, user=request.user, verify_user=True))


@_json_door
def sudo_complete(request):
    if not _signed_in(request):
        return _refused("Sign in first.", 401)
    device = passkey_authentication_complete(request=request, user=request.user, data=_body(request), purpose="sudo")
    django_otp.login(request, device)
    sudo_mark(request)
    return JsonResponse({"redirect_url": _safe_next(request, reverse("account"))})
