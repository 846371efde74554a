"""Password reset by email: the request (rate-limited), the email with its link, the new password.

The request page answers the same whether or not an account uses the address, and as fast: the view only counts
the request and queues a task with the address; the worker looks the address up and, for each active account with
a usable password that uses it, makes Django's reset token and emails the link. The token therefore never travels
through the broker or a log. It dies when the password changes (so it works once), after PASSWORD_RESET_TIMEOUT
seconds, and when the user signs in meanwhile (it covers the last sign-in time).

Setting the new password signs out every session of the user (they would be refused anyway: Django checks a
session against the password hash) and leaves MFA as it was: the next sign-in asks for the code as before.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from datetime import datetime

from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core.cache import cache
from django.db import transaction
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from apps.audit.choices import Outcome
from apps.audit.services import event_record
from apps.core import formatting
from apps.core.mail import email_send, portal_link
from apps.core.queueing import enqueue_on_commit
from apps.core.request_context import client_ip
from apps.core.throttling import client_network

from . import selectors, sessions, tokens
from .models import User
from .oidc.services import password_sign_in_refusal

CACHE_KEY_PREFIX = "opsdeck:throttle:password-reset:"
EMAIL_NAME = "password_reset"
# The done page may show (and act on) the user who just set a new password for this long.
COMPLETED_SESSION_KEY = "password_reset_completed"
COMPLETED_MAX_AGE_SECONDS = 15 * 60
# Sessions listed on the done page at most (the count covers all of them).
SESSIONS_LISTED = 20
ADDRESS_LENGTH = 254
_PERIOD_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PERIOD_WORDS = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}


@dataclass(frozen=True)
class Rate:
    """A request limit: ``count`` per ``seconds``, read from a DRF-style rate such as ``5/hour``."""

    count: int
    seconds: int

    @classmethod
    def parse(cls, text: str) -> Rate:
        count, _, period = text.partition("/")
        return cls(count=int(count), seconds=_PERIOD_SECONDS[period[0]])

    def __str__(self) -> str:
        return f"{self.count} per {_PERIOD_WORDS[self.seconds]}"


class PasswordResetThrottled(Exception):
    """Too many reset requests from the client's address: answered 429, naming the limit and when to retry."""

    def __init__(self, rate: Rate, retry_after_seconds: int):
        self.rate = rate
        self.retry_after_seconds = retry_after_seconds
        super().__init__(
            f"Too many password reset requests from your address: at most {rate}. "
            f"Try again in {formatting.count(math.ceil(retry_after_seconds / 60), 'minute')}."
        )


def address_normalized(address: str) -> str:
    """The address as counted and looked up: trimmed, lowercased, at most 254 characters."""
    return address.strip().lower()[:ADDRESS_LENGTH]


def _address_digest(address: str) -> str:
    # The cache key names the address without holding it.
    return hashlib.sha256(address.encode()).hexdigest()[:32]


def _over_limit(scope: str, subject: str, rate: Rate, *, request, audited: dict) -> int | None:
    """Count one request of ``subject``; None within ``rate``, else the seconds until its window ends.

    Fixed windows of the rate's period, one cache key each (Redis outside the embedded mode, so the count holds
    across processes and hosts); a refusal is counted too, which changes nothing once over the limit. The first
    refusal of a subject in a window is audited (with ``audited`` among its details), the rest only counted.
    """
    now = time.time()
    window_start = int(now // rate.seconds) * rate.seconds
    key = f"{CACHE_KEY_PREFIX}{scope}:{subject}:{window_start}"
    if cache.add(key, 1, timeout=rate.seconds + 60):
        count = 1
    else:
        try:
            count = cache.incr(key)
        except ValueError:  # expired between the two calls: the window is over
            count = 1
    if count <= rate.count:
        return None
    wait = max(1, math.ceil(window_start + rate.seconds - now))
    # One audit row per refused subject and window: a flood must not grow the trail.
    if cache.add(f"{key}:audited", 1, timeout=rate.seconds + 60):
        event_record(
            action="auth.password_reset.refused",
            outcome=Outcome.DENIED,
            request=request,
            changes={"limit": scope, "rate": str(rate), "retry_after_seconds": wait, **audited},
        )
    return wait


def password_reset_request(*, address: str, request) -> bool:
    """Ask for a reset link to be emailed to ``address``; False when the address is over its limit.

    The caller answers the same either way, and the same whether or not an account uses the address: nothing
    here looks it up. Raises PasswordResetThrottled when the client's address is over its limit, and
    QueueUnavailable when the task broker refuses the message. Audited as ``auth.password_reset.requested``
    (with the address as typed, lowercased: the row says nothing about whether an account uses it) or
    ``auth.password_reset.refused``.
    """
    ip_rate = Rate.parse(settings.PASSWORD_RESET_RATE_PER_IP)
    network = client_network(request)
    wait = _over_limit("ip", network, ip_rate, request=request, audited={"client": network})
    if wait is not None:
        raise PasswordResetThrottled(ip_rate, wait)
    address = address_normalized(address)
    address_rate = Rate.parse(settings.PASSWORD_RESET_RATE_PER_ADDRESS)
    if _over_limit("address", _address_digest(address), address_rate, request=request, audited={"address": address}):
        return False
    ip = client_ip(request) or ""
    with transaction.atomic():
        event_record(action="auth.password_reset.requested", request=request, changes={"address": address})
        enqueue_on_commit(
            lambda: _send_enqueue(address, ip),
            refused=lambda reason: event_record(
                action="auth.password_reset.refused",
                outcome=Outcome.FAILURE,
                request=request,
                changes={"limit": "", "reason": reason, "address": address},
            ),
            what="the password reset email",
            retry="Ask again",
            outcome="nothing was sent",
        )
    return True


def _send_enqueue(address: str, ip: str) -> None:
    from .tasks import password_reset_email  # tasks import this module

    password_reset_email.delay(address, ip)


def password_reset_users(*, address: str) -> list[User]:
    """The accounts a reset link for ``address`` goes to: active, with a usable password, using that address, and
    allowed to sign in with a password (under OIDC_ONLY, only the break-glass accounts are)."""
    address = address_normalized(address)
    candidates = User.objects.filter(email__iexact=address, is_active=True).order_by("pk")
    return [
        user
        for user in candidates
        if user.has_usable_password()
        and address_normalized(user.email) == address
        and password_sign_in_refusal(username=user.get_username()) is None
    ]


def password_reset_link(*, user: User) -> str:
    """The absolute link that lets ``user`` set a new password (once, within PASSWORD_RESET_TIMEOUT)."""
    path = reverse(
        "password-reset-confirm",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user),
        },
    )
    return portal_link(path)


def password_reset_send(*, address: str, ip: str = "") -> int:
    """Email a reset link to every account ``password_reset_users`` finds for ``address``; returns how many.

    Runs in the worker. Raises the mail server's errors so that the task retries. Each message sent is audited
    as ``auth.password_reset.sent`` on its user, with the address the request came from.
    """
    sent = 0
    for user in password_reset_users(address=address):
        email_send(
            name=EMAIL_NAME,
            to=[user.email],
            context={
                "username": user.get_username(),
                "link": password_reset_link(user=user),
                "minutes": settings.PASSWORD_RESET_TIMEOUT // 60,
                "ip": ip,
            },
        )
        event_record(
            action="auth.password_reset.sent",
            obj=user,
            ip=ip,
            changes={"valid_minutes": settings.PASSWORD_RESET_TIMEOUT // 60},
        )
        sent += 1
    return sent


@dataclass(frozen=True)
class PasswordResetDone:
    """What a completed reset did: how many sessions it ended, and those that were in use (device, address,
    signed in, last seen)."""

    user: User
    signed_out: int
    sessions: list[dict]


@transaction.atomic
def password_reset_complete(*, user: User, password: str, request=None) -> PasswordResetDone:
    """Set the new password of ``user`` (the reset link's token was checked) and sign out all their sessions.

    The caller validated the password. MFA devices stay as they are; the failed sign-ins counted against the
    username (django-axes) are cleared. Audited as ``auth.password_reset.completed`` (and ``auth.session.ended``
    when there were sessions); never the password.
    """
    in_use = [
        {
            "device": entry.device,
            "ip": entry.ip,
            "created": entry.created.isoformat(),
            "last_seen": entry.last_seen.isoformat(),
        }
        for entry in sessions.user_sessions_active(user=user)
    ]
    user.set_password(password)
    user.save(update_fields=["password"])
    signed_out = sessions.sessions_end_others(user=user, current_session_key=None, request=request)
    # Failed sign-ins with the forgotten password must not lock out the new one.
    cleared = AxesProxyHandler.reset_attempts(username=user.get_username())
    event_record(
        action="auth.password_reset.completed",
        actor=user,
        obj=user,
        request=request,
        changes={
            "signed_out": signed_out,
            "cleared_failed_attempts": cleared,
            "mfa": selectors.user_has_confirmed_device(user=user),
        },
    )
    return PasswordResetDone(user=user, signed_out=signed_out, sessions=in_use)


def completed_remember(*, request, done: PasswordResetDone) -> None:
    """Let the browser that set the password see the done page (sessions signed out, tokens to revoke) for a while."""
    request.session[COMPLETED_SESSION_KEY] = {
        "user_id": done.user.pk,
        "at": time.time(),
        "signed_out": done.signed_out,
        "sessions": done.sessions[:SESSIONS_LISTED],
    }


def completed_recall(*, request) -> PasswordResetDone | None:
    """The reset this browser completed within COMPLETED_MAX_AGE_SECONDS, or None."""
    stored = request.session.get(COMPLETED_SESSION_KEY)
    if not isinstance(stored, dict) or not isinstance(stored.get("at"), int | float):
        return None
    if time.time() - stored["at"] > COMPLETED_MAX_AGE_SECONDS:
        request.session.pop(COMPLETED_SESSION_KEY, None)
        return None
    user = User.objects.filter(pk=stored.get("user_id"), is_active=True).first()
    if user is None:
        return None
    listed = [
        {
            **entry,
            "created": datetime.fromisoformat(entry["created"]),
            "last_seen": datetime.fromisoformat(entry["last_seen"]),
        }
        for entry in stored.get("sessions", [])
    ]
    return PasswordResetDone(user=user, signed_out=int(stored.get("signed_out", 0)), sessions=listed)


def password_reset_tokens_revoke(*, user: User) -> int:
    """Revoke every API token of ``user`` after a reset (their choice on the done page); returns how many.

    Each is audited as ``auth.token.revoked`` by the user.
    """
    with transaction.atomic():
        return tokens.tokens_revoke_all(owner=user, by=user)
