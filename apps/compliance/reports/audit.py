"""Reports read from the audit trail: authentication failures, the trail itself, and privileged changes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

from django.db import connection
from django.db.models import Case, CharField, Count, F, Max, Min, Q, QuerySet, Value, When

from apps.audit.export import EXPORT_COLUMNS, EXPORT_FIELDS, postgres_csv_rows
from apps.audit.hashing import GENESIS_HASH, canonical_timestamp
from apps.audit.models import AuditEvent
from apps.audit.selectors import chain_anchor, events_between
from apps.audit.verification import VERIFY_PARALLEL_MIN_EVENTS, chain_verify

from .base import CHUNK_SIZE, ReportParams, Section, iso, yes_no

# --- Authentication

LOGIN_FAILED = "auth.login.failed"
OTP_FAILED = "auth.otp.failed"
LOCKOUT = "auth.lockout"
AUTHENTICATION_ACTIONS = (LOGIN_FAILED, OTP_FAILED, LOCKOUT)

# A failed password names the attempted username only as the event's object (there is no actor);
# a failed second factor has the signed-in-by-password user as its actor.
_WHO = Case(When(actor_username="", then=F("object_repr")), default=F("actor_username"), output_field=CharField())
_COUNTS = {
    "failed_logins": Count("id", filter=Q(action=LOGIN_FAILED)),
    "otp_failures": Count("id", filter=Q(action=OTP_FAILED)),
    "lockouts": Count("id", filter=Q(action=LOCKOUT)),
}


def _authentication_events(params: ReportParams) -> QuerySet[AuditEvent]:
    return events_between(since=params.period_start, until=params.period_end).filter(action__in=AUTHENTICATION_ACTIONS)


def _lockout_finding(lockouts: int) -> str:
    return f"locked out {lockouts} time{'s' if lockouts != 1 else ''}" if lockouts else ""


def _by_user_rows(events: QuerySet) -> Iterator[list]:
    grouped = (
        events.annotate(who=_WHO)
        .values("who")
        .annotate(**_COUNTS, addresses=Count("ip", distinct=True), first=Min("timestamp"), last=Max("timestamp"))
        .order_by("who")
    )
    for group in grouped.iterator(chunk_size=CHUNK_SIZE):
        yield [
            group["who"], group["failed_logins"], group["otp_failures"], group["lockouts"], group["addresses"],
            iso(group["first"]), iso(group["last"]), _lockout_finding(group["lockouts"]),
        ]  # fmt: skip


def _by_ip_rows(events: QuerySet) -> Iterator[list]:
    grouped = (
        events.annotate(who=_WHO)
        .values("ip")
        .annotate(**_COUNTS, usernames=Count("who", distinct=True), first=Min("timestamp"), last=Max("timestamp"))
        .order_by("ip")
    )
    for group in grouped.iterator(chunk_size=CHUNK_SIZE):
        yield [
            group["ip"], group["failed_logins"], group["otp_failures"], group["lockouts"], group["usernames"],
            iso(group["first"]), iso(group["last"]), _lockout_finding(group["lockouts"]),
        ]  # fmt: skip


def _lockout_rows(events: QuerySet) -> Iterator[list]:
    lockouts = events.filter(action=LOCKOUT).order_by("id").values_list("id", "timestamp", "object_repr", "ip",
                                                                        "changes_text")  # fmt: skip
    for event_id, timestamp, username, ip, changes in lockouts.iterator(chunk_size=CHUNK_SIZE):
        yield [event_id, iso(timestamp), username, ip, json.loads(changes).get("locked_until", "")]


def authentication(params: ReportParams) -> Iterator[Section]:
    """Failed passwords, failed second factors and lockouts in the period, per user and per client address."""
    events = _authentication_events(params)
    totals = events.aggregate(
        **_COUNTS, users=Count(_WHO, distinct=True), addresses=Count("ip", distinct=True)
    )  # fmt: skip
    columns = ["failed_logins", "otp_failures", "lockouts"]
    yield Section(
        name="by_user",
        title="Failures per user",
        columns=["username", *columns, "addresses", "first", "last", "findings"],
        rows=_by_user_rows(events),
        findings_column="findings",
        summary={
            "failed logins": totals["failed_logins"],
            "OTP failures": totals["otp_failures"],
            "lockouts": totals["lockouts"],
            "usernames": totals["users"],
            "client addresses": totals["addresses"],
        },
    )
    yield Section(
        name="by_ip",
        title="Failures per client address",
        columns=["ip", *columns, "usernames", "first", "last", "findings"],
        rows=_by_ip_rows(events),
        findings_column="findings",
        summary={"client addresses": totals["addresses"]},
    )
    yield Section(
        name="lockouts",
        title="Lockouts",
        columns=["event_id", "time", "username", "ip", "locked_until"],
        rows=_lockout_rows(events),
        summary={"lockouts": totals["lockouts"]},
    )


# --- The audit trail

# Periods with at least this many events have their chain verified while their rows are written.
CONCURRENT_VERIFY_MIN_EVENTS = VERIFY_PARALLEL_MIN_EVENTS


def _trail_events(params: ReportParams) -> QuerySet[AuditEvent]:
    events = events_between(since=params.period_start, until=params.period_end)
    if prefix := params.filters.get("action_prefix"):
        events = events.filter(action__startswith=prefix)
    if actor := params.filters.get("actor"):
        events = events.filter(actor_username=actor)
    return events


def _export_rows(events: QuerySet) -> Iterator[tuple]:
    # The export's own columns and timestamp form, so an auditor can recompute each event's hash from the report.
    timestamp = EXPORT_COLUMNS.index("timestamp")
    rows = events.order_by("id").values_list(*EXPORT_COLUMNS).iterator(chunk_size=CHUNK_SIZE)
    for row in rows:
        yield (*row[:timestamp], canonical_timestamp(row[timestamp]), *row[timestamp + 1 :])


def head_hash_at(moment) -> str:
    """The hash of the chain's last event before ``moment``: what the trail's head was then."""
    head = AuditEvent.objects.filter(timestamp__lt=moment).order_by("-id").values_list("hash", flat=True).first()
    if head:
        return head
    anchor = chain_anchor()
    return anchor.anchor_hash if anchor else GENESIS_HASH


def _chain_summary(first_id: int | None, last_id: int | None) -> dict:
    if first_id is None:
        return {"chain intact in period": "yes", "chain verification": "No events in the period."}
    result = chain_verify(from_id=first_id, to_id=last_id)
    summary = {
        "chain intact in period": yes_no(result.ok),
        "chain verification": result.summary(),
        "period events": f"#{first_id} to #{last_id}",
    }
    if result.warnings:
        summary["chain warnings"] = "; ".join(result.warnings)
    return summary


def _chain_summary_in_thread(first_id: int, last_id: int) -> dict:
    try:
        return _chain_summary(first_id, last_id)
    finally:
        connection.close()  # this thread's own connection


def chain_verification_started(params: ReportParams) -> Callable[[], dict]:
    """Start verifying the chain over the period's events (all of them, whatever the filters).

    Returns a function that gives the result as summary entries. A long period is verified on connections of its
    own while the caller streams the rows (it costs about as much as writing them); a short one when asked.
    """
    in_period = events_between(since=params.period_start, until=params.period_end)
    bounds = in_period.aggregate(first=Min("id"), last=Max("id"), count=Count("id"))
    if connection.vendor != "postgresql" or bounds["count"] < CONCURRENT_VERIFY_MIN_EVENTS:
        return lambda: _chain_summary(bounds["first"], bounds["last"])
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="report-chain-verify")
    pending = pool.submit(_chain_summary_in_thread, bounds["first"], bounds["last"])
    pool.shutdown(wait=False)  # the thread ends with its one task
    return pending.result


def _completed_after(rows: Iterable, complete: Callable[[], None]) -> Iterator:
    yield from rows
    complete()


def audit_trail(params: ReportParams) -> Iterator[Section]:
    """Every audit event in the period (optionally one action prefix or one actor), in chain order, streamed.

    The summary's chain verification is completed once the rows have been read.
    """
    events = _trail_events(params)
    chain_summary = chain_verification_started(params)
    summary = {
        "events": events.count(),
        **({"action prefix": params.filters["action_prefix"]} if params.filters.get("action_prefix") else {}),
        **({"actor": params.filters["actor"]} if params.filters.get("actor") else {}),
    }
    head_hash = head_hash_at(params.period_end)

    def complete() -> None:
        if "head hash at end of period" not in summary:
            summary.update(chain_summary())
            summary["head hash at end of period"] = head_hash

    csv_rows = postgres_csv_rows(events.order_by("id"))
    yield Section(
        name="events",
        title="Audit events",
        columns=list(EXPORT_FIELDS),
        rows=_completed_after(_export_rows(events), complete),
        summary=summary,
        csv_rows=None if csv_rows is None else _completed_after(csv_rows, complete),
        row_count=summary["events"],
    )


# --- Privileged changes

# (category, condition): the first that matches names an event's category.
PRIVILEGED_CATEGORIES: tuple[tuple[str, Q], ...] = (
    ("roles and permissions", Q(action__startswith="accounts.role.")),
    ("accounts", Q(action__startswith="accounts.user.")),
    ("second factors and lockouts", Q(action__in=("mfa.removed", "auth.unlock"))),
    ("schedule", Q(action__startswith="schedule.")),
    ("admin changes", Q(action__startswith="admin.object.")),
    ("restores and archiving", Q(action__in=("backup.restored", "audit.archived"))),
)
PRIVILEGED_COLUMNS = [
    "id", "timestamp", "category", "actor", "ip", "action", "object_type", "object_id", "object", "changes",
    "outcome",
]  # fmt: skip


def _privileged_condition() -> Q:
    condition = Q()
    for _, category_condition in PRIVILEGED_CATEGORIES:
        condition |= category_condition
    return condition


def _privileged_rows(events: QuerySet) -> Iterator[list]:
    category = Case(
        *(When(condition, then=Value(name)) for name, condition in PRIVILEGED_CATEGORIES), output_field=CharField()
    )
    rows = (
        events.annotate(category=category)
        .order_by("id")
        .values_list(
            "id",
            "timestamp",
            "category",
            "actor_username",
            "ip",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "changes_text",
            "outcome",
        )
    )
    for row in rows.iterator(chunk_size=CHUNK_SIZE):
        yield [row[0], iso(row[1]), *row[2:]]


def privileged_changes(params: ReportParams) -> Iterator[Section]:
    """Role, permission and account changes, removed second factors, unlocks, schedule and other admin changes,
    restores and audit archiving in the period, with the before/after the trail recorded."""
    events = events_between(since=params.period_start, until=params.period_end).filter(_privileged_condition())
    # Aliases are SQL identifiers: the categories' names (with spaces) go back on afterwards.
    counts = events.aggregate(
        **{f"category_{index}": Count("id", filter=condition) for index, (_, condition) in
           enumerate(PRIVILEGED_CATEGORIES)}, total=Count("id"),
    )  # fmt: skip
    yield Section(
        name="changes",
        title="Privileged changes",
        columns=PRIVILEGED_COLUMNS,
        rows=_privileged_rows(events),
        summary={
            "changes": counts["total"],
            **{name: counts[f"category_{index}"] for index, (name, _) in enumerate(PRIVILEGED_CATEGORIES)},
        },
    )
