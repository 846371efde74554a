"""Passkeys (WebAuthn credentials of django-otp-webauthn): registration, use and removal.

A passkey is a django-otp device, so a session verified with one (``django_otp.login``) passes every rule that
asks for a second factor: the OTP-only admin, forced enrollment, the API and websocket rules and the sudo window.
The ceremonies are checked by the package's helper (py_webauthn underneath); the one-time challenge of each
ceremony lives in the session and is removed before the answer is checked, so it cannot be replayed.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django_otp_webauthn import exceptions as webauthn_exceptions
from django_otp_webauthn.helpers import WebAuthnHelper
from django_otp_webauthn.models import WebAuthnCredential
from django_otp_webauthn.utils import rewrite_exceptions

from apps.audit.choices import Outcome
from apps.audit.services import event_record
from apps.core.permissions import role_names

from .models import User

logger = logging.getLogger(__name__)

NAME_MAX_LENGTH = 64
PASSKEYS_PER_USER_MAX = 20
REGISTER_STATE_KEY = "passkey_register_state"
AUTH_STATE_KEY = "passkey_auth_state"


class PasskeyError(Exception):
    """A passkey operation was refused; the message can be shown to the user, ``status`` is the HTTP status."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class PasskeyHelper(WebAuthnHelper):
    """The package's helper with Opsdeck's rule for origins.

    Without WEBAUTHN_ALLOWED_ORIGINS the origin is https://<rp id>; with the RP id ``localhost`` (development,
    tests) the page's own http://localhost:<port> is accepted too, which browsers treat as a secure context.
    """

    def get_allowed_origins(self) -> list[str]:
        origins = list(super().get_allowed_origins())
        rp_id = self.get_relying_party_domain()
        if rp_id == "localhost" and self.request.get_host().split(":")[0] == "localhost":
            scheme = "https" if self.request.is_secure() else "http"
            origins.append(f"{scheme}://{self.request.get_host()}")
        return origins


def _helper(request) -> PasskeyHelper:
    return PasskeyHelper(request)


def _checked(call):
    """Run a ceremony check; the package's and py_webauthn's refusals become a PasskeyError."""
    try:
        with rewrite_exceptions(logger=logger):
            return call()
    except webauthn_exceptions.OTPWebAuthnApiError as exc:
        raise PasskeyError(f"The passkey was not accepted: {exc.detail}", status=exc.status_code) from None


def _state_pop(request, key: str) -> dict:
    # Popped and saved before the answer is checked: a challenge is good for one answer only.
    state = request.session.pop(key, None)
    request.session.save()
    if not isinstance(state, dict):
        raise PasskeyError("This passkey request has expired or was already used; start again.", status=409)
    return state


# --- Registration


def passkey_registration_begin(*, request, user: User, name: str) -> dict:
    """The options for ``navigator.credentials.create``; the challenge and the chosen name wait in the session."""
    name = " ".join(str(name or "").split())
    if not name:
        raise PasskeyError("Give the passkey a name, such as the device it lives on.")
    if len(name) > NAME_MAX_LENGTH:
        raise PasskeyError(f"A passkey name may be at most {NAME_MAX_LENGTH} characters long.")
    existing = WebAuthnCredential.objects.filter(user=user)
    if existing.count() >= PASSKEYS_PER_USER_MAX:
        raise PasskeyError(
            f"You have {PASSKEYS_PER_USER_MAX} passkeys, the most an account may have; remove one first.", status=409
        )
    if existing.filter(name=name).exists():
        raise PasskeyError(f"You already have a passkey named “{name}”; choose another name.")
    options, state = _helper(request).register_begin(user=user)
    request.session[REGISTER_STATE_KEY] = {**state, "name": name}
    return options


@transaction.atomic
def passkey_registration_complete(*, request, user: User, data: dict) -> WebAuthnCredential:
    """Check the browser's new credential against the pending challenge and store it under its name; audited."""
    state = _state_pop(request, REGISTER_STATE_KEY)
    name = state.pop("name", "Passkey")
    device = _checked(lambda: _helper(request).register_complete(user=user, state=state, data=data))
    device.name = name
    device.save(update_fields=["name"])
    event_record(
        action="mfa.passkey.registered", actor=user, obj=user, request=request,
        changes={"name": name, "device_id": device.pk, "discoverable": device.discoverable},
    )  # fmt: skip
    return device


# --- Use


def passkey_authentication_begin(*, request, user: User | None, verify_user: bool = False) -> dict:
    """The options for ``navigator.credentials.get``: for ``user``'s passkeys, or (``None``) any discoverable one.

    User verification (PIN, biometric) is demanded when the passkey is the only proof (passwordless sign-in,
    ``verify_user``); as a second factor after the password, presence is enough.
    """
    if user is not None and not WebAuthnCredential.objects.filter(user=user, confirmed=True).exists():
        raise PasskeyError("This account has no passkey.", status=409)
    verification = user is None or verify_user
    options, state = _helper(request).authenticate_begin(user=user, require_user_verification=verification)
    request.session[AUTH_STATE_KEY] = state
    return options


def passkey_authentication_complete(*, request, user: User | None, data: dict, purpose: str) -> WebAuthnCredential:
    """Check the browser's answer to the pending challenge; the passkey that signed it.

    With ``user`` the passkey must be theirs (second factor, re-authentication); without, it names its owner
    (passwordless sign-in), whose role must be in PASSKEY_PASSWORDLESS_ROLES. Use and refusal are audited.
    """
    state = _state_pop(request, AUTH_STATE_KEY)
    try:
        device = _checked(lambda: _helper(request).authenticate_complete(user=user, state=state, data=data))
        if not device.confirmed or not device.user.is_active:
            raise PasskeyError("This passkey or its account is disabled.", status=403)
        if user is None and not passwordless_allowed(user=device.user):
            raise PasskeyError(
                "Your role may not sign in with a passkey alone: sign in with your password, then use the passkey.",
                status=403,
            )
    except PasskeyError as exc:
        event_record(
            action="auth.passkey.failed", actor=user, obj=user, outcome=Outcome.FAILURE, request=request,
            changes={"purpose": purpose, "reason": str(exc)},
        )  # fmt: skip
        raise
    event_record(
        action="mfa.passkey.used", actor=device.user, obj=device.user, request=request,
        changes={"name": device.name, "device_id": device.pk, "purpose": purpose},
    )  # fmt: skip
    return device


def passwordless_allowed(*, user: User) -> bool:
    """Whether ``user`` may sign in with a passkey alone (a role in PASSKEY_PASSWORDLESS_ROLES)."""
    allowed = set(settings.PASSKEY_PASSWORDLESS_ROLES)
    return bool(allowed) and not role_names(user).isdisjoint(allowed)


# --- Removal


@transaction.atomic
def passkey_remove(*, user: User, passkey_id: int, request=None, actor: User | None = None) -> str:
    """Delete one of ``user``'s passkeys (the caller checked the sudo window); its name. Audited."""
    device = WebAuthnCredential.objects.select_for_update().filter(pk=passkey_id, user=user).first()
    if device is None:
        raise PasskeyError("That passkey does not exist (it may have been removed already).", status=404)
    name = device.name
    device.delete()
    event_record(
        action="mfa.passkey.removed", actor=actor or user, obj=user, request=request,
        changes={"name": name, "device_id": passkey_id},
    )  # fmt: skip
    return name
