"""Maintenance mode (read-only mode): turning it on and off, planning windows, and asking whether it is on.

While it is on, writes through the API and the pages are refused with 503 (apps/readonly/middleware.py), workers
take no new jobs (apps.jobs.lifecycle.jobs_claim holds them here, and sends them again when it ends), and every page
shows a banner. It is on when the switch is on and its ``until`` has not passed, or while a planned window runs.
Scheduled housekeeping (the maintenance queue, backups included) goes on.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError, transaction
from django.utils import timezone

from apps.audit.services import event_record
from apps.core.choices import Role
from apps.core.datetimes import validate_storable_datetime
from apps.core.errors import ApplicationError, NotPermitted
from apps.core.formatting import date_time_text
from apps.core.permissions import has_role

from .models import HeldJob, MaintenanceMode, MaintenanceWindow

logger = logging.getLogger(__name__)

MESSAGE_MAX_LENGTH = 500
DEFAULT_MESSAGE = "Opsdeck is in maintenance: changes are paused for a while. Reading works as usual."
# Retry-After when nobody said when it ends: long enough not to hammer the portal, short enough to notice the end.
DEFAULT_RETRY_AFTER_SECONDS = 120
# Planned windows are announced on the banner this long before they start.
ANNOUNCE_AHEAD = timedelta(hours=24)
# The per-request check reads the database at most this often per process: a change is seen everywhere within it
# (the setting MAINTENANCE_STATUS_CACHE_SECONDS overrides it; the test settings read every time).
STATUS_CACHE_SECONDS = 1.0
# Windows longer than this are a typo (a year instead of a day), not a plan.
WINDOW_MAX_LENGTH = timedelta(days=7)


class MaintenanceError(ApplicationError):
    """A maintenance request that cannot be done as asked (bad times, unknown window)."""

    status = 400


# --- Status


@dataclass(frozen=True)
class PlannedWindow:
    """A maintenance window that has not ended."""

    id: int
    starts_at: datetime
    ends_at: datetime
    message: str

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "starts_at": _iso(self.starts_at),
            "ends_at": _iso(self.ends_at),
            "message": self.message,
        }


@dataclass(frozen=True)
class MaintenanceStatus:
    """Whether maintenance mode is on now, why (``source``: "switch" or "window"), its message and end, and the
    windows planned within ANNOUNCE_AHEAD."""

    active: bool
    checked_at: datetime
    source: str = ""
    message: str = ""
    since: datetime | None = None
    until: datetime | None = None
    changed_by: str = ""
    window_id: int | None = None
    upcoming: tuple[PlannedWindow, ...] = field(default=())

    def retry_after_seconds(self, now: datetime | None = None) -> int:
        """Seconds a client should wait before trying a write again: until the end when known (at least 1)."""
        if self.until is None:
            return DEFAULT_RETRY_AFTER_SECONDS
        left = (self.until - (now or timezone.now())).total_seconds()
        return max(1, math.ceil(left))

    def refusal_text(self) -> str:
        """The message of a refused write: what is going on and when it ends."""
        end = f" It is planned to end at {date_time_text(self.until)}." if self.until else ""
        return f"Maintenance mode is on, so changes are refused for now. {self.message}{end}".strip()

    def as_dict(self) -> dict:
        return {
            "active": self.active,
            "source": self.source or None,
            "message": self.message,
            "since": _iso(self.since),
            "until": _iso(self.until),
            "changed_by": self.changed_by or None,
            "window": self.window_id,
            "retry_after_seconds": self.retry_after_seconds() if self.active else None,
            "upcoming": [window.as_dict() for window in self.upcoming],
            "checked_at": _iso(self.checked_at),
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def maintenance_mode_status(*, now: datetime | None = None) -> MaintenanceStatus:
    """The state as the database has it now (two small queries). For the per-request check use
    ``maintenance_mode_current``."""
    now = now or timezone.now()
    # Who switched it is read only while it is on: the check on every write must not touch the users' table.
    switch = MaintenanceMode.objects.filter(pk=MaintenanceMode.SINGLETON_PK).first()
    windows = list(
        MaintenanceWindow.objects.filter(
            cancelled_at__isnull=True, ends_at__gt=now, starts_at__lte=now + ANNOUNCE_AHEAD
        )
    )
    running = [window for window in windows if window.starts_at <= now]
    upcoming = tuple(
        PlannedWindow(window.pk, window.starts_at, window.ends_at, window.message or DEFAULT_MESSAGE)
        for window in windows
        if window.starts_at > now
    )
    if switch is not None and switch.enabled and (switch.until is None or switch.until > now):
        return MaintenanceStatus(
            active=True,
            checked_at=now,
            source="switch",
            message=switch.message or DEFAULT_MESSAGE,
            since=switch.since,
            until=switch.until,
            changed_by=switch.changed_by.get_username() if switch.changed_by else "",
            upcoming=upcoming,
        )
    if running:
        # Overlapping windows: maintenance lasts until the last of them ends.
        window = max(running, key=lambda window: window.ends_at)
        return MaintenanceStatus(
            active=True,
            checked_at=now,
            source="window",
            message=window.message or DEFAULT_MESSAGE,
            since=min(window.starts_at for window in running),
            until=window.ends_at,
            window_id=window.pk,
            upcoming=upcoming,
        )
    return MaintenanceStatus(active=False, checked_at=now, upcoming=upcoming)


_cache_lock = threading.Lock()
_cached: tuple[float, MaintenanceStatus] | None = None


def maintenance_mode_current() -> MaintenanceStatus:
    """The state, read from the database at most every STATUS_CACHE_SECONDS per process (the middleware, the
    banner and the job claims ask on every request or message).

    If the database cannot be read, the last known state is kept (off if none): a page about a database outage
    must still render.
    """
    global _cached
    now = time.monotonic()
    cached = _cached
    if cached is not None and now - cached[0] < getattr(
        settings, "MAINTENANCE_STATUS_CACHE_SECONDS", STATUS_CACHE_SECONDS
    ):
        return cached[1]
    try:
        status = maintenance_mode_status()
    except DatabaseError:
        logger.warning("maintenance mode could not be read; keeping the last known state", exc_info=True)
        status = cached[1] if cached is not None else MaintenanceStatus(active=False, checked_at=timezone.now())
        # Kept for a while too, so that during a database outage only one request per interval waits for it.
    with _cache_lock:
        _cached = (now, status)
    return status


def maintenance_mode_forget_cached() -> None:
    """Make this process read the state again on its next check (after it changed the state itself)."""
    global _cached
    with _cache_lock:
        _cached = None


# --- Who may change it


def maintenance_may_change(user) -> bool:
    """Staff administrators switch maintenance mode and plan windows (the command line needs no user)."""
    return bool(user and user.is_authenticated and user.is_active and user.is_staff and has_role(user, Role.ADMIN))


def _check_actor(actor) -> None:
    if actor is not None and not maintenance_may_change(actor):
        raise NotPermitted("Only staff administrators may turn maintenance mode on or off or plan its windows.")


# --- Validation (the forms and the command use these too, so every door gives the same message)


def maintenance_message_clean(message: str) -> str:
    message = (message or "").strip()
    if len(message) > MESSAGE_MAX_LENGTH:
        raise MaintenanceError(
            f"The message has {len(message)} characters; at most {MESSAGE_MAX_LENGTH} are allowed.", field="message"
        )
    # A sentence of its own: the banner and the refusal put the end time right after it.
    if message and message[-1] not in ".!?…" and len(message) < MESSAGE_MAX_LENGTH:
        message += "."
    return message


def _storable(value: datetime, name: str) -> None:
    if timezone.is_naive(value):
        raise MaintenanceError(f"{name} needs a time zone, e.g. 2026-12-07T22:00:00Z.", field=name)
    try:
        validate_storable_datetime(value)
    except ValidationError as exc:
        raise MaintenanceError(f"{name}: {exc.messages[0]}", field=name) from None


def maintenance_until_check(until: datetime | None, *, now: datetime | None = None) -> None:
    """Refuse an end that has already passed (MaintenanceError naming ``until``)."""
    if until is None:
        return
    _storable(until, "until")
    now = now or timezone.now()
    if until <= now:
        raise MaintenanceError(
            f"until ({_iso(until)}) has already passed (it is now {_iso(now.replace(microsecond=0))}); "
            "give a time in the future, or none to stay on until turned off.",
            field="until",
        )


def maintenance_window_check(starts_at: datetime, ends_at: datetime, *, now: datetime | None = None) -> None:
    """Refuse a window that ends before it starts, has already ended, or is longer than WINDOW_MAX_LENGTH."""
    _storable(starts_at, "start")
    _storable(ends_at, "end")
    now = now or timezone.now()
    if ends_at <= starts_at:
        raise MaintenanceError(
            f"The end ({_iso(ends_at)}) must come after the start ({_iso(starts_at)}).", field="ends_at"
        )
    if ends_at <= now:
        raise MaintenanceError(f"The end ({_iso(ends_at)}) has already passed.", field="ends_at")
    if ends_at - starts_at > WINDOW_MAX_LENGTH:
        raise MaintenanceError(
            f"A window lasts at most {WINDOW_MAX_LENGTH.days} days; this one lasts {ends_at - starts_at}.",
            field="ends_at",
        )


# --- Changing it


_ended_hooks: list[Callable[[], object]] = []


def maintenance_ended_hook_register(hook: Callable[[], object]) -> None:
    """Call ``hook`` after maintenance mode was turned off here (the job layer sends the held jobs again).

    Workers also notice the end by themselves (the switch's ``until`` or a window passing), so a hook that fails
    loses nothing; it only makes the end felt sooner.
    """
    if hook not in _ended_hooks:
        _ended_hooks.append(hook)


def _run_ended_hooks() -> None:
    maintenance_mode_forget_cached()
    for hook in _ended_hooks:
        try:
            hook()
        except Exception:
            logger.exception("after maintenance mode ended, %s failed; workers retry it shortly", hook)


def _switch_locked() -> MaintenanceMode:
    MaintenanceMode.objects.get_or_create(pk=MaintenanceMode.SINGLETON_PK)
    return MaintenanceMode.objects.select_for_update().get(pk=MaintenanceMode.SINGLETON_PK)


def maintenance_mode_enable(
    *, actor=None, message: str = "", until: datetime | None = None, via: str = ""
) -> MaintenanceStatus:
    """Turn maintenance mode on (or change its message or end while on); audited as ``maintenance.enabled``.

    ``actor`` None is the command line. Raises NotPermitted (403) for anyone but staff administrators and
    MaintenanceError (400) for an ``until`` already past or a message over MESSAGE_MAX_LENGTH.
    """
    _check_actor(actor)
    message = maintenance_message_clean(message)
    now = timezone.now()
    maintenance_until_check(until, now=now)
    with transaction.atomic():
        switch = _switch_locked()
        before = {"enabled": switch.enabled, "message": switch.message, "until": _iso(switch.until)}
        was_on = switch.enabled and (switch.until is None or switch.until > now)
        switch.enabled, switch.message, switch.until = True, message, until
        switch.since = switch.since if was_on else now
        switch.changed_at, switch.changed_by = now, actor
        switch.save()
        event_record(
            action="maintenance.enabled",
            actor=actor,
            obj=switch,
            changes={
                "before": before,
                "after": {"enabled": True, "message": message, "until": _iso(until)},
                "via": via or "service",
            },
        )
        transaction.on_commit(maintenance_mode_forget_cached)
    maintenance_mode_forget_cached()  # this process sees its own change at once (and again once committed)
    return maintenance_mode_status()


def maintenance_mode_disable(*, actor=None, via: str = "") -> MaintenanceStatus:
    """Turn the switch off; audited as ``maintenance.disabled``. A planned window running now keeps the portal in
    maintenance until it ends or is cancelled. Once committed, held jobs are sent again."""
    _check_actor(actor)
    now = timezone.now()
    with transaction.atomic():
        switch = _switch_locked()
        before = {"enabled": switch.enabled, "message": switch.message, "until": _iso(switch.until)}
        switch.enabled, switch.until, switch.changed_at, switch.changed_by = False, None, now, actor
        switch.save()
        event_record(
            action="maintenance.disabled",
            actor=actor,
            obj=switch,
            changes={"before": before, "after": {"enabled": False}, "via": via or "service"},
        )
        transaction.on_commit(_run_ended_hooks)
    maintenance_mode_forget_cached()
    return maintenance_mode_status()


def maintenance_window_schedule(
    *, actor=None, starts_at: datetime, ends_at: datetime, message: str = "", via: str = ""
) -> MaintenanceWindow:
    """Plan a window of maintenance mode; audited as ``maintenance.window_scheduled``. The banner announces it
    ANNOUNCE_AHEAD before it starts. Raises MaintenanceError (400) for bad times, NotPermitted (403)."""
    _check_actor(actor)
    message = maintenance_message_clean(message)
    maintenance_window_check(starts_at, ends_at)
    with transaction.atomic():
        window = MaintenanceWindow.objects.create(
            starts_at=starts_at, ends_at=ends_at, message=message, created_by=actor
        )
        event_record(
            action="maintenance.window_scheduled",
            actor=actor,
            obj=window,
            changes={
                "starts_at": _iso(starts_at),
                "ends_at": _iso(ends_at),
                "message": message,
                "via": via or "service",
            },
        )
        transaction.on_commit(maintenance_mode_forget_cached)
    maintenance_mode_forget_cached()
    return window


def maintenance_window_cancel(*, actor=None, window_id: int, via: str = "") -> MaintenanceWindow:
    """Cancel a window that has not ended (a running one ends now); audited as ``maintenance.window_cancelled``.

    Raises MaintenanceError (404) for an unknown window and (409) for one already cancelled or over.
    """
    _check_actor(actor)
    now = timezone.now()
    with transaction.atomic():
        window = MaintenanceWindow.objects.select_for_update().filter(pk=window_id).first()
        if window is None:
            raise MaintenanceError(f"There is no maintenance window #{window_id}.", status=404, code="not_found")
        if window.cancelled_at is not None:
            raise MaintenanceError(f"Maintenance window #{window_id} is already cancelled.", status=409)
        if window.ends_at <= now:
            raise MaintenanceError(f"Maintenance window #{window_id} is already over.", status=409)
        running = window.starts_at <= now
        window.cancelled_at, window.cancelled_by = now, actor
        window.save(update_fields=["cancelled_at", "cancelled_by"])
        event_record(
            action="maintenance.window_cancelled",
            actor=actor,
            obj=window,
            changes={"starts_at": _iso(window.starts_at), "ends_at": _iso(window.ends_at), "was_running": running,
                     "via": via or "service"},
        )  # fmt: skip
        transaction.on_commit(_run_ended_hooks if running else maintenance_mode_forget_cached)
    maintenance_mode_forget_cached()
    return window


def maintenance_windows_planned(*, now: datetime | None = None) -> list[MaintenanceWindow]:
    """Windows not cancelled that have not ended, soonest first."""
    now = now or timezone.now()
    return list(MaintenanceWindow.objects.filter(cancelled_at__isnull=True, ends_at__gt=now).order_by("starts_at"))


# --- Jobs held while it is on (the job layer decides what to hold and how to send them again)


def maintenance_jobs_hold(*, kind: str, job_ids: Iterable[int]) -> None:
    """Remember queued jobs whose message a worker took while maintenance mode was on (in the claim's
    transaction), so that they are sent again when it ends."""
    HeldJob.objects.bulk_create([HeldJob(kind=kind, job_id=job_id) for job_id in job_ids], ignore_conflicts=True)


def maintenance_held_jobs_exist() -> bool:
    return HeldJob.objects.exists()


def maintenance_held_jobs_take(*, kind: str) -> list[int]:
    """Forget the held jobs of ``kind`` and return their ids, inside the caller's transaction (which sends them
    again); rows another process is taking are skipped."""
    held = list(
        HeldJob.objects.select_for_update(skip_locked=True).filter(kind=kind).order_by("id").values_list("pk", "job_id")
    )
    HeldJob.objects.filter(pk__in=[pk for pk, _ in held]).delete()
    return [job_id for _, job_id in held]


def maintenance_held_job_ids() -> dict[str, list[int]]:
    """The ids of the jobs held now, by kind (the workers page shows them: the broker no longer has them)."""
    held: dict[str, list[int]] = {}
    for kind, job_id in HeldJob.objects.order_by("id").values_list("kind", "job_id"):
        held.setdefault(kind, []).append(job_id)
    return held
