"""Forwarding the audit trail to collectors (SIEMs): at least once, in id order, resuming from a stored cursor.

Each sink's ``cursor`` is the id of the last event its collector accepted. A run sends the events after it in id
order, in batches, and moves the cursor past a batch only once the collector accepted all of it; a batch that
fails is sent again, whole, by a later run. Appends run on parallel chains, so ids do not commit in order: an
event on one chain may commit after a higher id on another. A batch therefore takes only events up to
``settled_event_id()``, below which every event that will ever exist is already committed, and the cursor never
passes an event still to come. An event can only be sent twice when a forwarder dies between the collector's
acceptance and the cursor's update (or a collector dies after reading a batch); messages carry the event id and
hash for de-duplication.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from apps.core import formatting
from apps.core.queueing import enqueue_on_commit

from . import sinks
from .metrics import AUDIT_FORWARD_EVENTS, AUDIT_FORWARD_FAILURES, AUDIT_FORWARD_LAG_EVENTS, AUDIT_FORWARD_LAG_SECONDS
from .models import AuditEvent, AuditSink
from .selectors import settled_event_id
from .services import AuditError, event_record
from .sink_urls import SinkUrl, SinkUrlError, sink_url_parse, url_masked

# pg_try_advisory_lock(FORWARD_LOCK_CLASS, sink id): one forwarder per sink across processes and hosts.
FORWARD_LOCK_CLASS = 0x4F504657  # "OPFW"
# A run stops after this long even when events keep coming, so that runs (every minute) do not pile up.
RUN_BUDGET_SECONDS = 50
# Events that wait behind a lower id still open on another chain (see _batch): a run looks again this often, for
# this long at most in all, before it leaves them to the next run.
HELD_BACK_PAUSE_SECONDS = 0.05
HELD_BACK_WAIT_SECONDS = 2.0
ERROR_LENGTH = 1000
# The fields of a sink an audit event shows, the URL masked.
AUDITED_FIELDS = ("name", "url", "tls_ca_file", "active", "managed", "cursor")

_local_locks: dict[int, threading.Lock] = {}
_local_locks_guard = threading.Lock()


class ForwardError(AuditError):
    """At least one sink did not accept its events; the message names each and why."""


def sink_target(sink: AuditSink) -> SinkUrl:
    """The parsed URL of ``sink`` (SinkUrlError when it is no longer valid, e.g. http:// not allowed any more)."""
    return sink_url_parse(sink.url, allow_http=settings.AUDIT_FORWARD_ALLOW_HTTP)


# --- Configuration: admin and AUDIT_FORWARD_URLS


def _audited(sink: AuditSink) -> dict:
    values = {name: getattr(sink, name) for name in AUDITED_FIELDS}
    values["url"] = url_masked(values["url"])
    return values


def sink_save(*, sink: AuditSink, fields: list[str] | None = None) -> AuditSink:
    """Create ``sink`` or save its ``fields`` (all when None), recording the change with its URL masked.

    Only the named fields are written, so that a form opened a while ago does not move the cursor back.
    """
    with transaction.atomic():
        before = None if sink.pk is None else AuditSink.objects.filter(pk=sink.pk).first()
        if before is None:
            sink.save()
            event_record(action="audit.sink.created", obj=sink, changes={"after": _audited(sink)})
            return sink
        fields = [name for name in (fields or AUDITED_FIELDS) if name in AUDITED_FIELDS]
        sink.save(update_fields=fields)
        old, new = _audited(before), _audited(sink)
        # A changed password leaves the masked URL as it was: still say that the URL changed.
        changes = {
            name: {"before": old[name], "after": new[name]}
            for name in fields
            if getattr(before, name) != getattr(sink, name)
        }
        if changes:
            event_record(action="audit.sink.changed", obj=sink, changes=changes)
    return sink


def sink_delete(*, sink: AuditSink) -> None:
    """Delete ``sink`` (its cursor goes with it), recording it."""
    with transaction.atomic():
        event_record(action="audit.sink.deleted", obj=sink, changes={"before": _audited(sink)})
        sink.delete()


def sinks_sync_from_settings() -> list[str]:
    """Make the sinks match AUDIT_FORWARD_URLS; returns the names of the sinks it created or changed.

    Idempotent (runs before every forwarding run): a URL's sink is created, or updated and activated, under its
    ``#name`` (default: its endpoint); a sink that AUDIT_FORWARD_URLS no longer lists is deactivated, keeping
    its cursor, so that listing it again resumes where it stopped.
    """
    wanted: dict[str, SinkUrl] = {}
    for url in settings.AUDIT_FORWARD_URLS:
        target = sink_url_parse(url, allow_http=settings.AUDIT_FORWARD_ALLOW_HTTP)
        wanted[target.name or target.endpoint] = target
    touched = []
    for name, target in wanted.items():
        values = {"url": target.url, "tls_ca_file": target.ca_file, "active": True, "managed": True}
        sink = AuditSink.objects.filter(name=name).first()
        if sink is not None and all(getattr(sink, key) == value for key, value in values.items()):
            continue
        sink = sink or AuditSink(name=name)
        for key, value in values.items():
            setattr(sink, key, value)
        try:
            sink_save(sink=sink, fields=list(values))
        except IntegrityError:  # another run created it at the same moment
            continue
        touched.append(name)
    for sink in AuditSink.objects.filter(managed=True, active=True).exclude(name__in=wanted):
        sink.active = False
        sink_save(sink=sink, fields=["active"])
        touched.append(sink.name)
    return touched


# --- Forwarding


@contextmanager
def _forwarder_lock(sink_id: int) -> Iterator[bool]:
    """Yield whether this forwarder may send for ``sink_id``: no other one is running for it."""
    if connection.vendor == "postgresql":
        # A session lock, not a transaction's: the cursor is committed after every batch while it is held.
        # It goes with the connection if the process dies.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [FORWARD_LOCK_CLASS, sink_id])
            acquired = cursor.fetchone()[0]
        try:
            yield acquired
        finally:
            if acquired:
                try:
                    with connection.cursor() as cursor:
                        cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [FORWARD_LOCK_CLASS, sink_id])
                except DatabaseError:  # the connection is gone, and its lock with it
                    pass
        return
    # SQLite (the embedded mode) runs every worker in this one process: a process lock is enough, and no write
    # transaction stays open while a collector is waited on.
    with _local_locks_guard:
        lock = _local_locks.setdefault(sink_id, threading.Lock())
    acquired = lock.acquire(blocking=False)
    try:
        yield acquired
    finally:
        if acquired:
            lock.release()


def _failure_record(sink: AuditSink, error: str) -> None:
    AuditSink.objects.filter(pk=sink.pk).update(
        last_failure_at=timezone.now(),
        last_error=error[:ERROR_LENGTH],
        consecutive_failures=F("consecutive_failures") + 1,
    )
    AUDIT_FORWARD_FAILURES.labels(sink=sink.name).inc()


def _batch(after_id: int, size: int) -> tuple[list[dict], bool]:
    """Up to ``size`` settled events after ``after_id``, and whether a short batch leaves committed events behind:
    they wait for a lower id that a transaction still open may yet commit."""
    # Settled first, then read: the read's snapshot must be newer than what settled_event_id looked at.
    settled = settled_event_id()
    documents = []
    if settled > after_id:
        events = AuditEvent.objects.filter(id__gt=after_id, id__lte=settled)
        rows = events.order_by("id").values_list(*sinks.EVENT_COLUMNS)[:size]
        documents = [sinks.event_document(row) for row in rows]
    held_back = len(documents) < size and AuditEvent.objects.filter(id__gt=max(after_id, settled)).exists()
    return documents, held_back


def sink_forward(sink_id: int) -> tuple[int, str]:
    """Send ``sink_id``'s pending events until it is caught up, a batch fails, or the run's time is up.

    Events waiting behind a lower id that a transaction still open may commit are waited for a little (at most
    HELD_BACK_WAIT_SECONDS in a run), then left to the next run.

    Returns (events sent, error or ""). Each batch re-reads the cursor and moves it only from the value it read,
    so an administrator's reset in the middle of a run is kept, not overwritten.
    """
    started = time.monotonic()
    sent, held_back_waited = 0, 0.0
    with _forwarder_lock(sink_id) as acquired:
        if not acquired:
            return 0, ""
        while True:
            sink = AuditSink.objects.filter(pk=sink_id, active=True).first()
            if sink is None:
                break
            try:
                target = sink_target(sink)
            except SinkUrlError as exc:
                _failure_record(sink, str(exc))
                return sent, str(exc)
            documents, held_back = _batch(sink.cursor, settings.AUDIT_FORWARD_BATCH_SIZE)
            if documents:
                try:
                    sinks.deliver(
                        target,
                        documents,
                        ca_file=sink.tls_ca_file or target.ca_file,
                        timeout=settings.AUDIT_FORWARD_TIMEOUT_SECONDS,
                    )
                except sinks.DeliveryError as exc:
                    _failure_record(sink, str(exc))
                    return sent, str(exc)
                moved = AuditSink.objects.filter(pk=sink_id, cursor=sink.cursor).update(
                    cursor=documents[-1]["id"],
                    last_success_at=timezone.now(),
                    last_error="",
                    consecutive_failures=0,
                    forwarded_total=F("forwarded_total") + len(documents),
                )
                AUDIT_FORWARD_EVENTS.labels(sink=sink.name).inc(len(documents))
                sent += len(documents)
                if not moved:  # the cursor was reset meanwhile: the next run starts from the new one
                    break
            if time.monotonic() - started > RUN_BUDGET_SECONDS:
                break
            if len(documents) < settings.AUDIT_FORWARD_BATCH_SIZE:
                # Caught up, unless events wait behind a lower id still open: such a transaction mostly ends within
                # moments, so wait a little for it rather than leave the rest to the next run.
                if not held_back or held_back_waited >= HELD_BACK_WAIT_SECONDS:
                    break
                time.sleep(HELD_BACK_PAUSE_SECONDS)
                held_back_waited += HELD_BACK_PAUSE_SECONDS
    return sent, ""


def audit_forward(*, sink_id: int | None = None) -> str:
    """Send every active sink's (or only ``sink_id``'s) pending events; returns what was sent.

    First makes the sinks match AUDIT_FORWARD_URLS. Raises ForwardError naming the sinks that failed, after
    trying all of them, so that the maintenance run shows the failure.
    """
    sinks_sync_from_settings()
    active = AuditSink.objects.filter(active=True).order_by("name")
    if sink_id is not None:
        active = active.filter(pk=sink_id)
    lines, failures = [], []
    for sink in active:
        sent, error = sink_forward(sink.pk)
        if error:
            failures.append(f"{sink.name}: {error} (after {formatting.count(sent, 'event')} sent)")
        else:
            lines.append(f"{sink.name}: {formatting.count(sent, 'event')} sent")
    forward_metrics_refresh()
    if failures:
        raise ForwardError("; ".join(failures + lines))
    return "; ".join(lines) if lines else "No active audit sinks."


# --- Status: lag, metrics, readiness


def sink_lag(sink: AuditSink, *, now: datetime | None = None) -> tuple[int, float]:
    """(events not yet accepted, age in seconds of the oldest of them); (0, 0.0) when caught up.

    The count is the span of ids from the first unsent event to the newest: two index probes however far
    behind the sink is. Rolled-back appends leave rare gaps in the ids, which it would count.
    """
    first = AuditEvent.objects.filter(id__gt=sink.cursor).order_by("id").values_list("id", "timestamp").first()
    if first is None:
        return 0, 0.0
    newest = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first()
    age = ((now or timezone.now()) - first[1]).total_seconds()
    return newest - first[0] + 1, max(0.0, age)


def forward_metrics_refresh() -> list[tuple[AuditSink, int, float]]:
    """Set the lag gauges of every active sink from the database; returns (sink, events, seconds) of each."""
    now = timezone.now()
    status = []
    for sink in AuditSink.objects.filter(active=True).order_by("name"):
        events, seconds = sink_lag(sink, now=now)
        AUDIT_FORWARD_LAG_EVENTS.labels(sink=sink.name).set(events)
        AUDIT_FORWARD_LAG_SECONDS.labels(sink=sink.name).set(seconds)
        status.append((sink, events, seconds))
    return status


def forwarding_health() -> tuple[bool, str]:
    """(ok, detail) for readiness: not ok while a sink's last attempt failed or it lags too far behind."""
    status = forward_metrics_refresh()
    if not status:
        return True, "no active audit sinks"
    problems = []
    for sink, events, seconds in status:
        if sink.consecutive_failures:
            attempts = formatting.count(sink.consecutive_failures, "failed attempt")
            problems.append(f"{sink.name}: {attempts}, {formatting.count(events, 'event')} waiting; {sink.last_error}")
        elif seconds > settings.AUDIT_FORWARD_MAX_LAG_SECONDS:
            problems.append(
                f"{sink.name}: {formatting.count(events, 'event')} waiting, the oldest {seconds:.0f} s old "
                f"(at most {settings.AUDIT_FORWARD_MAX_LAG_SECONDS} s allowed)"
            )
    if problems:
        return False, "; ".join(problems)
    return True, f"{formatting.count(len(status), 'sink')} up to date"


def sink_send_now(*, sink: AuditSink) -> None:
    """Queue a forwarding run for ``sink`` alone (the admin's "Send now"); QueueUnavailable if the broker refuses."""
    from .tasks import audit_forward_sink  # tasks import this module

    enqueue_on_commit(
        lambda: audit_forward_sink.delay(sink.pk),
        refused=lambda reason: None,
        what=f"sending to {sink.name}",
        outcome="nothing was sent now",
        retry="The schedule sends every minute; or try",
    )
