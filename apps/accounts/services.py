"""Business logic of accounts."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.password_validation import validate_password
from django.db import transaction
from django.utils import timezone
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from apps.audit.choices import Outcome
from apps.audit.services import event_record
from apps.core import formatting

from . import selectors, sessions
from .models import User

GENERATED_PASSWORD_BYTES = 18


@dataclass(frozen=True)
class AdminEnsured:
    user: User
    created: bool
    generated_password: str | None  # only when the portal chose it; shown once, never stored


@transaction.atomic
def admin_ensure(*, username: str, password: str | None) -> AdminEnsured:
    """Make sure superuser ``username`` exists; an existing account is left unchanged.

    Without a password a random one is generated and returned once so the
    caller can show it; a given password must pass the password validators.
    """
    existing = User.objects.filter(username=username).first()
    if existing is not None:
        if not existing.is_superuser:
            raise ValueError(f"User {username!r} exists but is not a superuser; choose another admin username.")
        return AdminEnsured(user=existing, created=False, generated_password=None)
    generated = None
    if not password:
        password = generated = secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)
    user = User(username=username, is_staff=True, is_superuser=True)
    validate_password(password, user)
    user.set_password(password)
    user.save()
    return AdminEnsured(user=user, created=True, generated_password=generated)


# --- MFA: TOTP devices and recovery codes

RECOVERY_CODE_COUNT = 10
TOTP_DEVICE_NAME = "Authenticator app"
RECOVERY_DEVICE_NAME = "Recovery codes"


class MfaError(Exception):
    """An MFA operation was refused; the message says why and can be shown to the user."""


def totp_enrollment_start(*, user: User) -> TOTPDevice:
    """The user's unconfirmed TOTP device, created with a fresh secret if there is none.

    Refused when the user already has a confirmed device: one authenticator per account.
    """
    if selectors.user_has_totp(user=user):
        raise MfaError("You already have an authenticator; disable it first to enroll a new one.")
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-id").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=TOTP_DEVICE_NAME, confirmed=False)
    return device


@transaction.atomic
def totp_enrollment_confirm(*, user: User, device_id: int, token: str) -> list[str]:
    """Confirm the pending TOTP device with a code from it; returns the new recovery codes (shown once).

    A wrong code leaves the device unconfirmed and counts as a failed OTP attempt.
    """
    device = TOTPDevice.objects.select_for_update().filter(pk=device_id, user=user, confirmed=False).first()
    if device is None:
        raise MfaError("This enrollment has expired; start again.")
    if not device.verify_token(_clean_token(token)):
        raise MfaError("That code is not correct. Check the clock of your device and enter the current code.")
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    codes = _recovery_codes_replace(user=user)
    event_record(action="mfa.enrolled", actor=user, obj=user, changes={"device": "totp", "recovery_codes": len(codes)})
    return codes


def _clean_token(token: str) -> str:
    return "".join(str(token or "").split()).lower()


def _recovery_codes_replace(*, user: User) -> list[str]:
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name=RECOVERY_DEVICE_NAME, confirmed=True)
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    return codes


@transaction.atomic
def recovery_codes_regenerate(*, user: User) -> list[str]:
    """Replace the user's recovery codes with 10 new ones (returned once); the old ones stop working."""
    if not selectors.user_has_totp(user=user):
        raise MfaError("Enroll an authenticator first; recovery codes come with it.")
    codes = _recovery_codes_replace(user=user)
    event_record(action="mfa.recovery_codes.regenerated", actor=user, obj=user, changes={"count": len(codes)})
    return codes


@transaction.atomic
def mfa_remove(*, user: User, actor: User | None = None, include_passkeys: bool = False) -> int:
    """Delete the user's authenticator app and recovery codes (by the user, or an admin's reset).

    ``include_passkeys`` (an admin's reset) deletes the passkeys too, so that no second factor is left.
    """
    removed = 0
    models = (TOTPDevice, StaticDevice, WebAuthnCredential) if include_passkeys else (TOTPDevice, StaticDevice)
    for model in models:
        removed += model.objects.filter(user=user).delete()[1].get(model._meta.label, 0)
    event_record(
        action="mfa.removed",
        actor=actor or user,
        obj=user,
        changes={
            "devices": removed,
            "by": "admin" if actor is not None and actor.pk != user.pk else "self",
            "factors": "all" if include_passkeys else "authenticator app and recovery codes",
        },
    )
    return removed


def otp_verify(*, user: User, token: str, request=None) -> Device | None:
    """Check a TOTP or recovery code of ``user``; the device that accepted it, or None.

    A TOTP code is accepted once (django-otp remembers the last time step used)
    and guesses are throttled per device. A recovery code is deleted on use.
    A failure is recorded in the audit trail and counts towards the lockout of
    the username and client address, like a wrong password.
    """
    token = _clean_token(token)
    device: Device | None = None
    if token:
        totp = selectors.totp_device_confirmed(user=user)
        if totp is not None and token.isdigit() and len(token) == totp.digits:
            device = _verify_locked(totp, token)
        else:
            static = selectors.recovery_device(user=user)
            if static is not None:
                device = _verify_locked(static, token)
                if device is not None:
                    remaining = selectors.recovery_codes_remaining(user=user)
                    event_record(
                        action="mfa.recovery_code.used", actor=user, obj=user, changes={"remaining": remaining},
                        request=request,
                    )  # fmt: skip
    if device is None:
        otp_failure_record(user=user, request=request)
    return device


def _verify_locked(device: Device, token: str) -> Device | None:
    # The row lock makes "check last_t, then store it" atomic: two requests with
    # the same code cannot both pass.
    with transaction.atomic():
        locked = type(device).objects.select_for_update().get(pk=device.pk)
        allowed, _ = locked.verify_is_allowed()
        return locked if allowed and locked.verify_token(token) else None


def otp_throttled_until(*, user: User):
    """When the user's authenticator accepts codes again after wrong guesses; None when it does now."""
    device = selectors.totp_device_confirmed(user=user)
    if device is None:
        return None
    allowed, detail = device.verify_is_allowed()
    return None if allowed else (detail or {}).get("locked_until")


def otp_failure_record(*, user: User, request=None) -> None:
    """Audit a failed second factor and count it towards the lockout (username + address)."""
    event_record(
        action="auth.otp.failed", actor=user, obj=user, outcome=Outcome.FAILURE, request=request,
        changes={"username": user.get_username()},
    )  # fmt: skip
    if request is not None:
        AxesProxyHandler.user_login_failed(
            sender=otp_failure_record, credentials={"username": user.get_username()}, request=request
        )


# --- Lockout and account state


def user_unlock(*, user: User, actor: User | None = None) -> int:
    """Clear the failed-login counters of ``user`` from every address; returns how many were cleared."""
    cleared = AxesProxyHandler.reset_attempts(username=user.get_username())
    event_record(action="auth.unlock", actor=actor, obj=user, changes={"cleared_attempts": cleared})
    return cleared


def user_deactivate(*, user: User, actor: User | None = None) -> bool:
    """Mark the account inactive (it can no longer sign in); False when it already was."""
    if not user.is_active:
        return False
    user.is_active = False
    user.save(update_fields=["is_active"])  # recorded as accounts.user.changed by the audit registry
    return True


def lockout_records_clear_expired() -> str:
    """Delete failed-login counters older than the cool-off (beat task); returns what was done."""
    from axes.models import AccessAttempt, AccessFailureLog

    threshold = timezone.now() - settings.AXES_COOLOFF_TIME
    attempts, _ = AccessAttempt.objects.filter(attempt_time__lt=threshold).delete()
    failure_logs, _ = AccessFailureLog.objects.filter(attempt_time__lt=threshold).delete()
    return (
        f"Deleted {formatting.count(attempts, 'expired lockout record')} "
        f"and {formatting.count(failure_logs, 'failure log entry', 'failure log entries')}."
    )


# --- Privileges and passwords (the doors check the sudo window first: that is a property of the session)


def _privileges(user: User) -> dict:
    """What ``user`` may do, as stored: staff and superuser flags, roles, direct permissions."""
    permissions = user.user_permissions.values_list("content_type__app_label", "codename")
    return {
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
        "roles": sorted(user.groups.values_list("name", flat=True)),
        "permissions": sorted(f"{app_label}.{codename}" for app_label, codename in permissions),
    }


@transaction.atomic
def user_privileges_change(
    *,
    user: User,
    actor: User,
    is_staff: bool,
    is_superuser: bool,
    roles: Iterable[Group],
    permissions: Iterable[Permission],
    request=None,
) -> dict | None:
    """Set what ``user`` may do, all or nothing; returns the recorded before/after, or None when nothing changed.

    One ``accounts.privileges.changed`` event holds the privileges before and after and what was granted or
    revoked. The caller has checked that ``actor`` may do this now (a fresh second factor).
    """
    before = _privileges(user)
    user.is_staff, user.is_superuser = is_staff, is_superuser
    user.save(update_fields=["is_staff", "is_superuser"])
    user.groups.set(roles)
    user.user_permissions.set(permissions)
    after = _privileges(user)
    if after == before:
        return None
    changes = {"before": before, "after": after, "granted": [], "revoked": []}
    for name in ("is_staff", "is_superuser"):
        if before[name] != after[name]:
            changes["granted" if after[name] else "revoked"].append(name)
    for name in ("roles", "permissions"):
        changes["granted"] += [f"{name}:{item}" for item in after[name] if item not in before[name]]
        changes["revoked"] += [f"{name}:{item}" for item in before[name] if item not in after[name]]
    event_record(action="accounts.privileges.changed", actor=actor, obj=user, changes=changes, request=request)
    return changes


@transaction.atomic
def user_password_change(*, user: User, password: str | None, request) -> int:
    """Set ``user``'s password (None: disable password sign-in) and end their other sessions; returns how many.

    The caller has validated the password (Django's forms run the validators) and checked the current password
    or the admin's right and the sudo window. The session making the request survives when it is the user's own;
    the caller then refreshes its auth hash (``sessions.session_keep_after_password_change``). Every session of
    someone else whose password an administrator set is ended. The audit event never holds the password.
    """
    actor = request.user
    own = actor.pk == user.pk
    if password is None:
        user.set_unusable_password()
    else:
        user.set_password(password)
    user.save(update_fields=["password"])
    ended = sessions.sessions_end_others(
        user=user, current_session_key=request.session.session_key if own else None, request=request, actor=actor
    )
    event_record(
        action="accounts.password.changed",
        actor=actor,
        obj=user,
        request=request,
        # Keys that do not look like secrets: the audit trail would mask their values.
        changes={"by": "self" if own else "administrator", "usable": password is not None, "signed_out": ended},
    )
    return ended
