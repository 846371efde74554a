"""Signed-in sessions: absolute and idle expiry, the list of a user's active sessions, ending them.

The Django session is the source of truth; ``UserSession`` rows only describe
sessions for the account page (device, address, last seen). Activity is written
to both at most once a minute, so that a busy page does not save its session on
every request.
"""

from __future__ import annotations

import time
from datetime import timedelta
from importlib import import_module

from django.conf import settings
from django.contrib.auth import SESSION_KEY, update_session_auth_hash
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.models import Session
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from apps.audit.services import event_record
from apps.core import formatting
from apps.core.request_context import client_ip

from .models import User, UserSession

# Session keys holding the sign-in time and the last recorded activity (UNIX seconds).
STARTED_AT_KEY = "session_started_at"
ACTIVITY_KEY = "session_activity_at"
# Activity is recorded at most this often; idle expiry is therefore exact to about a minute.
ACTIVITY_WRITE_INTERVAL_SECONDS = 60
USER_AGENT_LENGTH = 256


class SessionError(Exception):
    """A session operation was refused; the message says why."""


class SessionNotFound(SessionError):
    """No such session of this user (someone else's, or already ended)."""


def _session_store(session_key: str):
    return import_module(settings.SESSION_ENGINE).SessionStore(session_key)


def _idle_seconds() -> int:
    return settings.SESSION_IDLE_MINUTES * 60


def _request_details(request) -> dict[str, str]:
    return {
        "ip": client_ip(request) or "",
        "user_agent": request.META.get("HTTP_USER_AGENT", "")[:USER_AGENT_LENGTH],
    }


def user_session_start(*, request, user: User) -> UserSession | None:
    """Fix the new session's absolute expiry and record it for the list of active sessions.

    Called on ``user_logged_in``, after Django gave the session a new key. The
    expiry is stored as a date, so later saves of the session (activity,
    messages) do not push it back.
    """
    session = getattr(request, "session", None) if request is not None else None
    if session is None:
        return None
    now = time.time()
    session.set_expiry(timezone.now() + timedelta(seconds=settings.SESSION_COOKIE_AGE))
    session[STARTED_AT_KEY] = now
    session[ACTIVITY_KEY] = now
    if session.session_key is None:
        session.save()
    user_session, _ = UserSession.objects.update_or_create(
        session_key=session.session_key,
        defaults={"user": user, "last_seen": timezone.now(), **_request_details(request)},
    )
    return user_session


def user_session_forget(*, session_key: str | None) -> None:
    """Remove the list entry of a session that ended (sign-out)."""
    if session_key:
        UserSession.objects.filter(session_key=session_key).delete()


def user_session_touch(*, request, user: User) -> None:
    """Record activity of the request's session: in the session itself and in its list entry.

    Writes at most once every ACTIVITY_WRITE_INTERVAL_SECONDS; a session signed
    in before its list entry existed gets one now.
    """
    session = request.session
    now = time.time()
    last = session.get(ACTIVITY_KEY)
    if isinstance(last, int | float) and 0 <= now - last < ACTIVITY_WRITE_INTERVAL_SECONDS:
        return
    session[ACTIVITY_KEY] = now
    if session.session_key is None:
        return
    details = _request_details(request)
    updated = UserSession.objects.filter(session_key=session.session_key, user=user).update(
        last_seen=timezone.now(), **details
    )
    if not updated:
        UserSession.objects.update_or_create(
            session_key=session.session_key, defaults={"user": user, "last_seen": timezone.now(), **details}
        )


def session_idle_for(*, request) -> float | None:
    """Seconds the signed-in session has been idle beyond SESSION_IDLE_MINUTES, None when it has not."""
    last = request.session.get(ACTIVITY_KEY)
    if not isinstance(last, int | float):
        return None
    idle = time.time() - last
    return idle if idle > _idle_seconds() else None


def session_expire_idle(*, request, user: User, idle_seconds: float) -> None:
    """Sign out a session that was idle too long and record ``auth.session.expired``.

    The rest of the request is served to an anonymous user, so a page asks for
    the sign-in as usual. Not an ``auth.logout``: the user did not sign out.
    """
    session_key = request.session.session_key
    with transaction.atomic():
        event_record(
            action="auth.session.expired",
            actor=user,
            obj=user,
            request=request,
            changes={
                "reason": "idle",
                "idle_minutes": int(idle_seconds // 60),
                "limit_minutes": settings.SESSION_IDLE_MINUTES,
            },
        )
        user_session_forget(session_key=session_key)
    request.session.flush()
    request.user = AnonymousUser()
    request.__dict__.pop("_cached_user", None)


def user_sessions_active(*, user: User) -> QuerySet[UserSession]:
    """The user's sessions that can still be used: not expired and not idle too long."""
    now = timezone.now()
    live = Session.objects.filter(session_key=OuterRef("session_key"), expire_date__gt=now)
    idle_cutoff = now - timedelta(seconds=_idle_seconds())
    return UserSession.objects.filter(user=user, last_seen__gte=idle_cutoff).filter(Exists(live))


def _session_end(user_session: UserSession) -> None:
    _session_store(user_session.session_key).delete()
    user_session.delete()


def session_end(*, user: User, user_session_id: int, current_session_key: str | None, request=None) -> UserSession:
    """End one of the user's other sessions: that browser is signed out on its next request.

    Raises SessionNotFound for a session that is not the user's (or no longer
    exists), and SessionError for the session making the request (sign out instead).
    """
    user_session = UserSession.objects.filter(pk=user_session_id, user=user).first()
    if user_session is None:
        raise SessionNotFound("No such session of yours: it may have ended already.")
    if current_session_key and user_session.session_key == current_session_key:
        raise SessionError("This is the session you are using: sign out to end it.")
    with transaction.atomic():
        _session_end(user_session)
        event_record(
            action="auth.session.ended",
            actor=user,
            request=request,
            object_type="accounts.usersession",
            object_id=str(user_session_id),
            object_repr=str(user_session),
            changes={
                "scope": "one",
                "ip": user_session.ip,
                "user_agent": user_session.user_agent,
                "signed_in": user_session.created.isoformat(timespec="seconds"),
            },
        )
    return user_session


def sessions_end_others(*, user: User, current_session_key: str | None, request=None, actor: User | None = None) -> int:
    """End every session of the user except ``current_session_key`` (None: all of them); returns how many.

    One ``auth.session.ended`` event lists the count (none when there was nothing to end); its actor is the
    user, or ``actor`` (an administrator who set the user's password).
    """
    others = UserSession.objects.filter(user=user).exclude(session_key=current_session_key or "")
    with transaction.atomic():
        ended = list(others.select_for_update())
        for session in ended:
            _session_end(session)
        if ended:
            event_record(
                action="auth.session.ended",
                actor=actor or user,
                obj=user,
                request=request,
                changes={
                    "scope": "all_others",
                    "count": len(ended),
                    "ips": sorted({session.ip for session in ended if session.ip}),
                },
            )
    return len(ended)


def user_sessions_clear_orphaned() -> int:
    """Delete list entries whose Django session no longer exists (expired and cleared, or ended elsewhere)."""
    orphaned = UserSession.objects.filter(~Exists(Session.objects.filter(session_key=OuterRef("session_key"))))
    deleted, _ = orphaned.delete()
    return deleted


def session_clear_expired() -> str:
    """Delete expired sessions, then the active-session list entries left without one; returns what was done."""
    deleted, _ = Session.objects.filter(expire_date__lt=timezone.now()).delete()
    orphaned = user_sessions_clear_orphaned()
    message = f"Deleted {formatting.count(deleted, 'expired session')}."
    if orphaned:
        message += f" Removed {formatting.count(orphaned, 'stale entry', 'stale entries')} of the active-session list."
    return message


def session_is_signed_in(*, request) -> bool:
    """True when the request's session belongs to a signed-in user (without loading the user)."""
    return SESSION_KEY in request.session


def session_keep_after_password_change(*, request, user: User) -> None:
    """Keep the request's session signed in after its user's password changed.

    Django signs out sessions whose stored password hash is stale; this one gets the new hash and, against
    session fixation, a new key, which its entry in the list of active sessions follows.
    """
    old_key = request.session.session_key
    update_session_auth_hash(request, user)
    session_list_entry_rekey(old_key=old_key, new_key=request.session.session_key)


def session_list_entry_rekey(*, old_key: str | None, new_key: str | None) -> None:
    """Point the list entry of a session at its new key (after ``cycle_key``)."""
    if old_key and new_key and old_key != new_key:
        UserSession.objects.filter(session_key=old_key).update(session_key=new_key)
