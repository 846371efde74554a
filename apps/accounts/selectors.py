"""Read queries of accounts shared by views, admin and middleware."""

from __future__ import annotations

from datetime import datetime

from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import BooleanField, Count, Exists, ExpressionWrapper, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce, Now
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from apps.core.permissions import role_names

from .models import ApiToken


def mfa_required_for(*, user) -> bool:
    """Superusers and holders of a role in MFA_REQUIRED_ROLES must use a second factor."""
    if not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    # The role names has_role reads too: a token's request asks for them once.
    return not role_names(user).isdisjoint(settings.MFA_REQUIRED_ROLES)


def _confirmed_devices(user) -> QuerySet[TOTPDevice]:
    return TOTPDevice.objects.filter(user=user, confirmed=True)


def _confirmed_passkeys(user) -> QuerySet[WebAuthnCredential]:
    return WebAuthnCredential.objects.filter(user=user, confirmed=True)


def totp_device_confirmed(*, user) -> TOTPDevice | None:
    return _confirmed_devices(user).order_by("id").first()


def confirmed_device_exists(user) -> ExpressionWrapper:
    """An annotation: whether ``user`` (a user or an OuterRef to one) has a confirmed second factor: an
    authenticator, a passkey, or the identity provider's MFA (a ProviderMfaDevice exists once the provider reported
    MFA at a sign-in)."""
    from .oidc.models import ProviderMfaDevice

    return ExpressionWrapper(
        Exists(_confirmed_devices(user))
        | Exists(_confirmed_passkeys(user))
        | Exists(ProviderMfaDevice.objects.filter(user=user, confirmed=True)),
        output_field=BooleanField(),
    )


def user_has_confirmed_device(*, user) -> bool:
    """Whether the user has a second factor: an authenticator app or a passkey."""
    return user_has_totp(user=user) or user_has_passkey(user=user)


def user_has_totp(*, user) -> bool:
    return _confirmed_devices(user).exists()


def user_has_passkey(*, user) -> bool:
    return _confirmed_passkeys(user).exists()


def passkeys_of(*, user) -> list[WebAuthnCredential]:
    """The user's passkeys, oldest first (the account page's list)."""
    return list(_confirmed_passkeys(user).order_by("created_at", "id"))


def mfa_methods(*, user) -> list[str]:
    """The second factors the user has: any of "totp", "passkey", "recovery code" (for reports)."""
    methods = []
    if user_has_totp(user=user):
        methods.append("totp")
    if user_has_passkey(user=user):
        methods.append("passkey")
    if recovery_codes_remaining(user=user):
        methods.append("recovery code")
    return methods


def recovery_codes_remaining(*, user) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def recovery_device(*, user) -> StaticDevice | None:
    return StaticDevice.objects.filter(user=user, confirmed=True).order_by("id").first()


def _lockout_threshold() -> datetime:
    return timezone.now() - settings.AXES_COOLOFF_TIME


def locked_attempts() -> QuerySet[AccessAttempt]:
    """Failure counters that currently lock their username/address pair out."""
    return AccessAttempt.objects.filter(
        failures_since_start__gte=settings.AXES_FAILURE_LIMIT, attempt_time__gte=_lockout_threshold()
    )


def lockout_until(*, username: str, ip_address: str | None = None) -> datetime | None:
    """When the lockout of ``username`` (from ``ip_address``, if given) ends; None when not locked."""
    attempts = locked_attempts().filter(username=username)
    if ip_address is not None:
        attempts = attempts.filter(ip_address=ip_address)
    latest = attempts.order_by("-attempt_time").values_list("attempt_time", flat=True).first()
    return None if latest is None else latest + settings.AXES_COOLOFF_TIME


def users_with_account_state(queryset: QuerySet) -> QuerySet:
    """Annotate users with ``mfa_enabled``, ``locked_out`` and ``live_tokens`` for lists (one query)."""
    live_tokens = (
        ApiToken.objects.filter(owner=OuterRef("pk"), revoked__isnull=True)
        .filter(Q(expires__isnull=True) | Q(expires__gt=Now()))
        .order_by()
        .values("owner")
        .annotate(count=Count("pk"))
        .values("count")
    )
    return queryset.annotate(
        mfa_enabled=confirmed_device_exists(OuterRef("pk")),
        locked_out=Exists(locked_attempts().filter(username=OuterRef("username"))),
        live_tokens=Coalesce(Subquery(live_tokens), 0),
    )


def tokens_live(*, user) -> list[ApiToken]:
    """The user's API tokens that still work (neither revoked nor expired), newest first."""
    now = timezone.now()
    live = ApiToken.objects.filter(owner=user, revoked__isnull=True).filter(
        Q(expires__isnull=True) | Q(expires__gt=now)
    )
    return list(live.order_by("-created"))
