"""Single sign-on's logic: the user of a provider identity, their roles from the groups claim, the provider's MFA."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from apps.audit.choices import Outcome
from apps.audit.services import event_record
from apps.core.choices import Role

from .. import services as account_services
from ..models import User
from .models import OidcIdentity, ProviderMfaDevice

USERNAME_MAX = 150
# How long after the provider re-authenticated the user (auth_time) the callback may open the sudo window.
REAUTH_MAX_AGE_SECONDS = 300


class OidcRefused(Exception):
    """The provider vouched for someone Opsdeck will not sign in; the message says why and can be shown."""


def _username_from(claims: dict) -> str:
    wanted = str(claims.get("preferred_username") or str(claims.get("email") or "").split("@")[0] or "sso-user")
    base = re.sub(r"[^\w.@+-]", "-", wanted)[: USERNAME_MAX - 8] or "sso-user"
    candidate, number = base, 1
    while User.objects.filter(username__iexact=candidate).exists():
        number += 1
        candidate = f"{base}-{number}"
    return candidate


def groups_of(claims: dict) -> list[str]:
    """The OIDC_GROUPS_CLAIM claim as a list of names (a single string counts as one group)."""
    value = claims.get(settings.OIDC_GROUPS_CLAIM) or []
    if isinstance(value, str):
        value = [value]
    return sorted({str(item) for item in value if isinstance(item, str | int)}) if isinstance(value, list) else []


def roles_for(groups: Iterable[str]) -> set[str]:
    return {settings.OIDC_ROLE_MAP[group] for group in groups if group in settings.OIDC_ROLE_MAP}


def user_roles_apply(*, user: User, groups: Iterable[str], request=None) -> dict | None:
    """Give ``user`` exactly the roles their provider groups map to (OIDC_ROLE_MAP), at every sign-in.

    Other Django groups are kept; the staff flag follows the admin role (superusers keep theirs). The change is one
    ``accounts.privileges.changed`` event with before and after; None when nothing changed.
    """
    role_names = {role.value for role in Role}
    wanted = roles_for(groups)
    missing = wanted - set(Group.objects.filter(name__in=wanted).values_list("name", flat=True))
    for name in missing:  # `setup_roles` fills their permissions; a group must exist to be held
        Group.objects.get_or_create(name=name)
    keep = [group for group in user.groups.all() if group.name not in role_names]
    roles = keep + list(Group.objects.filter(name__in=wanted))
    return account_services.user_privileges_change(
        user=user,
        actor=None,
        is_staff=user.is_superuser or Role.ADMIN.value in wanted,
        is_superuser=user.is_superuser,
        roles=roles,
        permissions=list(user.user_permissions.all()),
        request=request,
    )


@transaction.atomic
def oidc_user_sign_in(*, claims: dict, request=None) -> tuple[User, OidcIdentity]:
    """The user of a verified ID token: found by (issuer, sub), created on first sign-in unless OIDC_CREATE_USERS is
    off, their roles set from the groups claim. Raises OidcRefused (audited) when they may not sign in."""
    issuer, subject = settings.OIDC_ISSUER, claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise OidcRefused("The provider's ID token has no subject (sub claim).")
    identity = (
        OidcIdentity.objects.select_for_update().select_related("user").filter(issuer=issuer, subject=subject).first()
    )
    if identity is None:
        if not settings.OIDC_CREATE_USERS:
            event_record(
                action="auth.oidc.refused", outcome=Outcome.FAILURE, request=request,
                changes={"issuer": issuer, "subject": subject, "reason": "no linked account"},
            )  # fmt: skip
            raise OidcRefused(
                "No Opsdeck account is linked to your identity at the provider, and new accounts are not created "
                "automatically (OIDC_CREATE_USERS is off). Ask an administrator to create one for you."
            )
        user = User(
            username=_username_from(claims),
            email=str(claims.get("email") or "") if claims.get("email_verified", False) else "",
            first_name=str(claims.get("given_name") or "")[:150],
            last_name=str(claims.get("family_name") or "")[:150],
        )
        user.set_unusable_password()  # SSO-only: no password to guess, reset or phish
        user.save()
        identity = OidcIdentity.objects.create(user=user, issuer=issuer, subject=subject)
        event_record(
            action="accounts.oidc.user_created", obj=user, request=request,
            changes={"issuer": issuer, "subject": subject, "username": user.username},
        )  # fmt: skip
    user = identity.user
    if not user.is_active:
        event_record(
            action="auth.oidc.refused", actor=user, obj=user, outcome=Outcome.FAILURE, request=request,
            changes={"issuer": issuer, "subject": subject, "reason": "account deactivated"},
        )  # fmt: skip
        raise OidcRefused("Your Opsdeck account is deactivated. Ask an administrator.")
    groups = groups_of(claims)
    if settings.OIDC_ROLE_MAP:  # without a map, roles are given in Opsdeck and sign-ins leave them alone
        user_roles_apply(user=user, groups=groups, request=request)
    identity.last_login = timezone.now()
    identity.last_groups = groups
    identity.last_amr = [str(item) for item in claims.get("amr") or [] if isinstance(item, str)]
    identity.save(update_fields=["last_login", "last_groups", "last_amr"])
    return user, identity


def provider_mfa_device(*, user: User, claims: dict) -> ProviderMfaDevice | None:
    """The device that OTP-verifies a session when the provider did MFA (``amr`` holds one of OIDC_MFA_AMR)."""
    amr = claims.get("amr") or []
    if not isinstance(amr, list) or not set(settings.OIDC_MFA_AMR) & {str(item) for item in amr}:
        return None
    identity = OidcIdentity.objects.get(issuer=settings.OIDC_ISSUER, subject=claims["sub"], user=user)
    device, _ = ProviderMfaDevice.objects.get_or_create(
        identity=identity,
        defaults={"user": user, "name": f"Provider MFA ({urlsplit(settings.OIDC_ISSUER).netloc})", "confirmed": True},
    )
    return device


def reauthenticated_recently(*, claims: dict, started_at: float) -> bool:
    """True when the provider authenticated the user again after ``started_at`` (auth_time), as sudo mode asks."""
    auth_time = claims.get("auth_time")
    if not isinstance(auth_time, int | float):
        return False
    now = time.time()
    # A few seconds of clock difference between the provider and the portal are tolerated.
    return auth_time >= started_at - 5 and now - auth_time <= REAUTH_MAX_AGE_SECONDS


def password_sign_in_refusal(*, username: str) -> str | None:
    """Why the password form refuses ``username`` (OIDC_ONLY); None when it may try."""
    if not settings.OIDC_ONLY or username in settings.OIDC_BREAK_GLASS_USERS:
        return None
    return (
        f"Sign-in with a password is turned off: use “Sign in with {settings.OIDC_BUTTON_LABEL}”. "
        "Only the break-glass accounts may use a password."
    )


def user_is_sso(*, user) -> bool:
    return user.is_authenticated and OidcIdentity.objects.filter(user=user, issuer=settings.OIDC_ISSUER).exists()


def sudo_at_provider(*, user) -> bool:
    """True when ``user`` renews the sudo window at the provider (prompt=login, max_age=0), not with a password:
    an SSO user without a usable password, or one whose password OIDC_ONLY refuses."""
    if not settings.OIDC_ENABLED or not user_is_sso(user=user):
        return False
    return not user.has_usable_password() or password_sign_in_refusal(username=user.get_username()) is not None
