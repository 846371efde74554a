"""The rules every door applies to whoever knocks, stated once.

HTTP applies them in layers: Django's session and authentication middleware
(session ended or expired, account deactivated, password changed), idle expiry
(``session_activity``), the second factor by role (``middleware``) and, for API
tokens, ``tokens.token_authenticate``. A websocket has no middleware of ours
between its handshake and its last message, so its consumers ask
``websocket_refusal`` at connect and again while open; it reads the same
session the browser's next HTTP request would read and answers as HTTP would.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module

from django.conf import settings
from django.contrib.auth import get_user
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.models import Device

from . import selectors, sessions
from .tokens import TokenRejected, token_check

MFA_ENROLL_HINT = "Your role requires two-factor authentication: set it up at /account/mfa/enroll/ first."
MFA_VERIFY_HINT = "Confirm your sign-in with your authentication code first."


@dataclass(frozen=True)
class _SessionHolder:
    """What Django's session helpers read of a request: only its session."""

    session: object


def session_otp_verified(*, session, user) -> bool:
    """True when the session was confirmed with a second factor of this user, as django-otp decides for HTTP."""
    persistent_id = session.get(DEVICE_ID_SESSION_KEY)
    device = Device.from_persistent_id(persistent_id) if persistent_id else None
    return device is not None and device.user_id == user.pk and device.confirmed


def mfa_refusal(*, user, verified: bool) -> str | None:
    """Why a signed-in user may not go on without a second factor; None when they may."""
    if verified or not selectors.mfa_required_for(user=user):
        return None
    return MFA_VERIFY_HINT if selectors.user_has_confirmed_device(user=user) else MFA_ENROLL_HINT


def session_refusal(*, session_key: str | None) -> str | None:
    """Why the session ``session_key`` would not be let in over HTTP now; None when it would.

    The session is read afresh from its store: a sign-out, an expiry or a
    password change since the socket opened is seen here.
    """
    if not session_key:
        return "Not signed in."
    holder = _SessionHolder(session=import_module(settings.SESSION_ENGINE).SessionStore(session_key))
    user = get_user(holder)
    if not user.is_authenticated:
        return "The session ended or expired, or the account was deactivated: sign in again."
    if sessions.session_idle_for(request=holder) is not None:
        return f"The session was idle for longer than {settings.SESSION_IDLE_MINUTES} minutes: sign in again."
    return mfa_refusal(user=user, verified=session_otp_verified(session=holder.session, user=user))


def websocket_refusal(*, scope) -> str | None:
    """Why a websocket may not open, or must close now; None while every HTTP rule still lets it in."""
    token = scope.get("auth_token")
    if token is not None:
        try:
            token_check(token_id=token.pk)
        except TokenRejected as rejected:
            return str(rejected)
        return None
    session = scope.get("session")
    return session_refusal(session_key=getattr(session, "session_key", None))
