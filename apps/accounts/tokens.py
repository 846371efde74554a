"""API tokens: creation, revocation and authentication (the token services of accounts)."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import CharField, OuterRef, QuerySet
from django.db.models.functions import Cast
from django.urls import reverse
from django.utils import timezone

from apps.audit.choices import Outcome
from apps.audit.services import event_record, events_record
from apps.core import formatting
from apps.core.choices import Role
from apps.core.errors import ApplicationError
from apps.core.events import notify

from .models import ApiToken, User
from .selectors import confirmed_device_exists, mfa_required_for

TOKEN_PREFIX = "odk_"  # noqa: S105 - the public marker of Opsdeck tokens, not a secret
# What a whole token looks like (prefix, 8 hex digits, its secret part), to recognise one pasted anywhere.
TOKEN_SHAPE = TOKEN_PREFIX + r"[0-9a-f]{8}_[A-Za-z0-9_-]{20,}"
PREFIX_LENGTH = len(TOKEN_PREFIX) + 8  # "odk_" and 8 hex digits; the secret part may contain "_"
SCOPES = ("read", "write")
LAST_USED_RESOLUTION = timedelta(minutes=1)


class TokenError(ApplicationError):
    """A token request a person can correct (400); the message says what and the limit."""


class TokenRejected(Exception):
    """Authentication with a token failed; ``status`` is 401 (bad token) or 403 (not allowed here)."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # the full bearer token; shown once, never stored


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def may_hold_unexpiring_token(user: User) -> bool:
    return user.is_superuser or user.groups.filter(name=Role.ADMIN).exists()


def _validated_networks(networks: list[str]) -> list[str]:
    cleaned = []
    for network in networks:
        try:
            cleaned.append(str(ipaddress.ip_network(str(network).strip(), strict=False)))
        except ValueError:
            raise TokenError(f"Allowed networks: {network!r} is not an IP network like 10.0.0.0/8.") from None
    return cleaned


def _expiry(user: User, expires_in_days: int | None) -> timezone.datetime | None:
    if expires_in_days is None:
        if not may_hold_unexpiring_token(user):
            raise TokenError("Only administrators may create tokens that never expire; set an expiry.")
        return None
    limit = settings.API_TOKEN_MAX_DAYS
    if not 1 <= expires_in_days <= limit:
        raise TokenError(f"A token expires after 1 to at most {limit:,} days.")
    return timezone.now() + timedelta(days=expires_in_days)


@transaction.atomic
def token_create(
    *, owner: User, name: str, scopes: list[str], expires_in_days: int | None, allowed_networks: list[str] = ()
) -> IssuedToken:
    """Issue a token for ``owner``; the returned secret is the only copy there will ever be."""
    name = name.strip()
    if not name:
        raise TokenError("Give the token a name that says what it is for.")
    unknown = sorted(set(scopes) - set(SCOPES))
    if not scopes or unknown:
        unknown_text = f" ({', '.join(unknown)} is not one)" if unknown else ""
        raise TokenError(f"Choose one or more scopes among {', '.join(SCOPES)}{unknown_text}.")
    prefix = TOKEN_PREFIX + secrets.token_hex(4)
    secret = f"{prefix}_{secrets.token_urlsafe(32)}"
    token = ApiToken.objects.create(
        owner=owner,
        name=name[:100],
        prefix=prefix,
        secret_hash=_digest(secret),
        scopes=sorted(set(scopes) | {"read"}),
        allowed_networks=_validated_networks(list(allowed_networks)),
        expires=_expiry(owner, expires_in_days),
    )
    event_record(
        action="auth.token.created",
        actor=owner,
        obj=token,
        changes={"scopes": token.scopes, "expires": token.expires, "allowed_networks": token.allowed_networks},
    )
    return IssuedToken(token=token, secret=secret)


@transaction.atomic
def token_revoke(*, token: ApiToken, by: User) -> ApiToken:
    """Revoke ``token`` (idempotent)."""
    if token.revoked is None:
        token.revoked = timezone.now()
        token.save(update_fields=["revoked"])
        event_record(action="auth.token.revoked", actor=by, obj=token)
    return token


def tokens_revoke_all(*, owner: User, by: User) -> int:
    """Revoke every live token of ``owner``; returns how many."""
    live = list(ApiToken.objects.filter(owner=owner, revoked__isnull=True))
    for token in live:
        token_revoke(token=token, by=by)
    return len(live)


def token_authenticate(*, secret: str, client_ip: str | None, write: bool) -> ApiToken:
    """The token a bearer secret stands for, or TokenRejected saying why."""
    well_formed = secret.startswith(TOKEN_PREFIX) and secret[PREFIX_LENGTH : PREFIX_LENGTH + 1] == "_"
    prefix = secret[:PREFIX_LENGTH] if well_formed else ""
    token = _tokens_with_owner().filter(prefix=prefix).first() if prefix else None
    if token is None or not hmac.compare_digest(token.secret_hash, _digest(secret)):
        raise TokenRejected("Invalid token.", 401)
    _check_usable(token)
    if token.allowed_networks and not _address_allowed(client_ip, token.allowed_networks):
        raise TokenRejected(f"Token {token.prefix} may not be used from {client_ip}.", 403)
    if write and "write" not in token.scopes:
        raise TokenRejected(f"Token {token.prefix} has only the read scope; writing needs the write scope.", 403)
    _note_use(token, client_ip)
    return token


def token_check(*, token_id: int) -> ApiToken:
    """The token again, as it is now, or TokenRejected: a connection opened with it re-checks it while open."""
    token = _tokens_with_owner().filter(pk=token_id).first()
    if token is None:
        raise TokenRejected("The token no longer exists.", 401)
    _check_usable(token)
    return token


def _tokens_with_owner() -> QuerySet[ApiToken]:
    """Tokens with their owner and whether the owner has a second factor: one query for what every request checks."""
    device = confirmed_device_exists(OuterRef("owner"))
    return ApiToken.objects.select_related("owner").annotate(owner_has_device=device)


def _check_usable(token: ApiToken) -> None:
    if token.revoked is not None:
        raise TokenRejected(f"Token {token.prefix} was revoked on {token.revoked:%Y-%m-%d %H:%M} UTC.", 401)
    if token.is_expired:
        raise TokenRejected(f"Token {token.prefix} expired on {token.expires:%Y-%m-%d %H:%M} UTC.", 401)
    if not token.owner.is_active:
        raise TokenRejected("The token's account is deactivated.", 401)
    # A token is a way around the sign-in; for a role that must use a second factor it may only stand
    # in for one that exists. An MFA reset or a promotion into such a role suspends the user's tokens
    # until they enroll; they work again after that, with nothing to re-issue.
    if mfa_required_for(user=token.owner) and not token.owner_has_device:
        raise TokenRejected(
            f"Token {token.prefix} is suspended: its owner's role requires two-factor authentication, "
            "and they have not set it up (at /account/mfa/enroll/).",
            403,
        )


def _address_allowed(client_ip: str | None, networks: list[str]) -> bool:
    if client_ip is None:
        return False
    address = ipaddress.ip_address(client_ip)
    return any(address in ipaddress.ip_network(network) for network in networks)


def _note_use(token: ApiToken, client_ip: str | None) -> None:
    # Written at most once a minute, so a busy client does not turn every read into a write.
    now = timezone.now()
    new_address = client_ip is not None and token.last_used_ip not in (None, client_ip)
    if token.last_used is None or now - token.last_used >= LAST_USED_RESOLUTION or new_address:
        ApiToken.objects.filter(pk=token.pk).update(last_used=now, last_used_ip=client_ip)
        if new_address:
            event_record(
                action="auth.token.used_new_ip",
                actor=token.owner,
                obj=token,
                outcome=Outcome.SUCCESS,
                changes={"previous_ip": token.last_used_ip, "ip": client_ip},
            )
        token.last_used, token.last_used_ip = now, client_ip


EXPIRING_WITHIN = timedelta(days=7)


def tokens_announce_expiring(*, now: datetime | None = None) -> str:
    """Announce ``token.expiring`` to the holder of each unrevoked token that expires within 7 days (hourly beat
    task); the audit trail remembers which tokens were announced, so each is announced once."""
    from apps.audit.models import AuditEvent

    now = now or timezone.now()
    announced = AuditEvent.objects.filter(action="notification.token.expiring", object_type="accounts.apitoken")
    expiring = (
        ApiToken.objects.select_related("owner")
        .filter(expires__gt=now, expires__lte=now + EXPIRING_WITHIN, revoked__isnull=True, owner__is_active=True)
        .annotate(id_text=Cast("pk", CharField()))
        .exclude(id_text__in=announced.values("object_id"))
    )
    count = 0
    for token in expiring:
        with transaction.atomic():
            notify(
                "token.expiring",
                data={
                    "token_name": token.name,
                    "token_prefix": token.prefix,
                    "expires_at": token.expires,
                    "path": reverse("account"),
                },
                user=token.owner,
                obj=token,
                summary=f"Your API token {token.name!r} ({token.prefix}…) expires "
                f"{formatting.date_time_text(token.expires)}",
            )
        count += 1
    return f"Announced {formatting.count(count, 'expiring token')}."


def tokens_flag_expired() -> str:
    """Record one ``auth.token.expired`` event per token that expired unrevoked (hourly beat task).

    The trail itself remembers which expiries were already recorded, so each
    token is flagged exactly once.
    """
    from apps.audit.models import AuditEvent

    flagged = AuditEvent.objects.filter(action="auth.token.expired", object_type="accounts.apitoken")
    expired = (
        ApiToken.objects.select_related("owner")
        .filter(expires__lte=timezone.now(), revoked__isnull=True)
        .annotate(id_text=Cast("pk", CharField()))
        .exclude(id_text__in=flagged.values("object_id"))
    )
    flagged_now = events_record(
        [
            {
                "action": "auth.token.expired",
                "actor": None,
                "obj": token,
                "changes": {"owner": token.owner.get_username(), "expired": token.expires},
            }
            for token in expired
        ]
    )
    return f"Flagged {formatting.count(len(flagged_now), 'expired token')}."
