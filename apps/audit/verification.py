"""Recomputing the audit chain and its signed checkpoints."""

from __future__ import annotations

import gzip
import hmac
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.db.models import Count, Max, Min
from django.utils import timezone

from .hashing import GENESIS_HASH, HASHED_FIELDS, POSTGRES_HASH_SQL, checkpoint_signature, event_hash, row_hash
from .models import AuditArchive, AuditCheckpoint, AuditEvent
from .selectors import chain_anchor

VERIFY_BATCH = 5000


@dataclass
class VerifyReport:
    verified: int = 0
    head_id: int | None = None
    head_hash: str = GENESIS_HASH
    checkpoints: int = 0
    bad_event_id: int | None = None
    problem: str = ""
    # What is broken: "chain" (events changed, missing, reordered) or "checkpoint" (a signed checkpoint itself).
    broken: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problem

    def summary(self) -> str:
        if not self.ok:
            where = f" at event #{self.bad_event_id}" if self.bad_event_id is not None else ""
            return f"Audit chain broken{where}: {self.problem}"
        head = f"#{self.head_id} {self.head_hash}" if self.head_id is not None else f"(empty) {self.head_hash}"
        return f"Verified {self.verified} events and {self.checkpoints} checkpoints; head {head}"

    def fail(self, event_id: int | None, problem: str, *, broken: str = "chain") -> VerifyReport:
        self.bad_event_id, self.problem, self.broken = event_id, problem, broken
        return self


def chain_verify(*, from_id: int | None = None, to_id: int | None = None) -> VerifyReport:
    """Recompute every event's hash and link in id order, then check the signed checkpoints.

    From ``from_id`` on, the first event's stored link is trusted as the
    starting point; otherwise the chain starts at the archive anchor or genesis.
    With ``to_id``, only events up to it (and the checkpoints that signed them) are checked.
    """
    report = VerifyReport()
    anchor = chain_anchor()
    if from_id is not None:
        first_link = AuditEvent.objects.filter(id__gte=from_id).order_by("id").values_list("prev_hash", flat=True)
        expected_prev = first_link.first() or GENESIS_HASH
    else:
        expected_prev = anchor.anchor_hash if anchor else GENESIS_HASH
    report.head_hash = expected_prev
    for segment in _segments_checked(from_id or 0, to_id):
        if segment.count:
            if segment.first_prev != expected_prev:
                return report.fail(
                    segment.first_id, _broken_link_problem(segment.first_id, report.head_id, segment.first_prev)
                )
            report.verified += segment.count
            report.head_id, report.head_hash = segment.last_id, segment.last_hash
            expected_prev = segment.last_hash
        if segment.bad_id is not None:
            if segment.bad_link is None:
                return report.fail(segment.bad_id, f"content changed: event #{segment.bad_id} does not match its hash")
            return report.fail(segment.bad_id, _broken_link_problem(segment.bad_id, segment.last_id, segment.bad_link))
    return _checkpoints_verify(report, anchor, from_id, to_id)


@dataclass
class _Segment:
    """The result of checking one id range: its own links, and where it starts and ends.

    ``count``, ``last_id`` and ``last_hash`` describe the events before the first problem, if there is one.
    """

    count: int = 0
    first_id: int | None = None
    first_prev: str = ""
    last_id: int | None = None
    last_hash: str = ""
    bad_id: int | None = None
    bad_link: str | None = None  # the stored prev_hash of a broken link; None for changed content


def _segment_check(from_id: int, to_id: int) -> _Segment:
    if connection.vendor == "postgresql":
        return _segment_check_in_postgres(from_id, to_id)
    segment = _Segment()
    events = AuditEvent.objects.filter(id__gte=from_id, id__lte=to_id).order_by("id")
    rows = events.values_list("id", *HASHED_FIELDS, "hash").iterator(chunk_size=VERIFY_BATCH)
    for event_id, *content, stored_hash in rows:
        prev_hash = content[-1]
        if row_hash(content) != stored_hash:
            segment.bad_id = event_id
            break
        if segment.count == 0:
            segment.first_id, segment.first_prev = event_id, prev_hash
        elif prev_hash != segment.last_hash:
            segment.bad_id, segment.bad_link = event_id, prev_hash
            break
        segment.count += 1
        segment.last_id, segment.last_hash = event_id, stored_hash
    return segment


_TABLE = AuditEvent._meta.db_table
# PostgreSQL recomputes each hash and compares each link with the previous event's hash itself, so only the
# first problem in the range (if any) crosses the wire.
_POSTGRES_FIRST_PROBLEM = (
    "SELECT id, content_ok, prev_hash FROM ("  # noqa: S608
    f"SELECT id, ({POSTGRES_HASH_SQL}) = hash AS content_ok, prev_hash, lag(hash) OVER (ORDER BY id) AS linked "
    f"FROM {_TABLE} WHERE id >= %s AND id <= %s) AS checked "
    "WHERE NOT content_ok OR prev_hash <> linked ORDER BY id LIMIT 1"
)
_POSTGRES_SPAN = f"SELECT count(*), min(id), max(id) FROM {_TABLE} WHERE id >= %s AND id < %s"  # noqa: S608
_POSTGRES_LINKS = f"SELECT id, prev_hash, hash FROM {_TABLE} WHERE id IN (%s, %s)"  # noqa: S608


def _segment_check_in_postgres(from_id: int, to_id: int) -> _Segment:
    segment = _Segment()
    with connection.cursor() as cursor:
        cursor.execute(_POSTGRES_FIRST_PROBLEM, [from_id, to_id])
        problem = cursor.fetchone()
        if problem is not None:
            segment.bad_id = problem[0]
            segment.bad_link = None if not problem[1] else problem[2]
        # The events before the first problem (all of them when there is none) are the verified ones.
        cursor.execute(_POSTGRES_SPAN, [from_id, segment.bad_id if problem else to_id + 1])
        segment.count, segment.first_id, segment.last_id = cursor.fetchone()
        if segment.count:
            cursor.execute(_POSTGRES_LINKS, [segment.first_id, segment.last_id])
            links = {event_id: (prev_hash, stored_hash) for event_id, prev_hash, stored_hash in cursor.fetchall()}
            segment.first_prev = links[segment.first_id][0]
            segment.last_hash = links[segment.last_id][1]
    return segment


def _segment_check_in_thread(bounds: tuple[int, int]) -> _Segment:
    try:
        return _segment_check(*bounds)
    finally:
        connection.close()  # this thread's own connection


# Large chains are checked in id ranges on separate connections, so PostgreSQL hashes them on
# several cores at once; the ranges are then joined in order.
VERIFY_PARALLEL_MIN_EVENTS = 50_000
VERIFY_WORKERS = 2


def _segments_checked(from_id: int, to_id: int | None = None) -> list[_Segment]:
    events = AuditEvent.objects.filter(id__gte=from_id)
    if to_id is not None:
        events = events.filter(id__lte=to_id)
    bounds = events.aggregate(low=Min("id"), high=Max("id"), count=Count("id"))
    if bounds["count"] == 0:
        return []
    low, high = bounds["low"], bounds["high"]
    if connection.vendor != "postgresql" or bounds["count"] < VERIFY_PARALLEL_MIN_EVENTS:
        return [_segment_check(low, high)]
    step = (high - low) // VERIFY_WORKERS + 1
    ranges = [(start, min(start + step - 1, high)) for start in range(low, high + 1, step)]
    with ThreadPoolExecutor(max_workers=VERIFY_WORKERS) as pool:
        return list(pool.map(_segment_check_in_thread, ranges))


def _broken_link_problem(event_id: int, previous_id: int | None, linked_hash: str) -> str:
    after = f" after event #{previous_id}" if previous_id is not None else " at the start of the chain"
    linked = AuditEvent.objects.filter(hash=linked_hash).values_list("id", flat=True).first()
    if linked is not None:
        return f"order changed: event #{event_id} belongs after event #{linked}, but comes{after}"
    return f"event missing: the event before #{event_id}{after} is gone"


def _checkpoints_verify(
    report: VerifyReport, anchor: AuditArchive | None, from_id: int | None, to_id: int | None
) -> VerifyReport:
    key = settings.AUDIT_SIGNING_KEY.encode()
    checkpoints = list(AuditCheckpoint.objects.order_by("id"))
    previous_signature = checkpoints[0].previous_signature if checkpoints else ""
    first_kept_id = anchor.last_id + 1 if anchor else 0
    for checkpoint in checkpoints:
        expected = checkpoint_signature(
            key,
            head_id=checkpoint.head_id,
            head_hash=checkpoint.head_hash,
            event_count=checkpoint.event_count,
            previous=checkpoint.previous_signature,
        )
        if not hmac.compare_digest(expected, checkpoint.signature):
            return report.fail(
                checkpoint.head_id, f"checkpoint {checkpoint.id} has an invalid signature", broken="checkpoint"
            )
        if checkpoint.previous_signature != previous_signature:
            return report.fail(
                checkpoint.head_id, f"a checkpoint before checkpoint {checkpoint.id} is missing", broken="checkpoint"
            )
        previous_signature = checkpoint.signature
    lowest = max(first_kept_id, from_id or 0)
    relevant = [c for c in checkpoints if c.head_id >= lowest and (to_id is None or c.head_id <= to_id)]
    stored = dict(AuditEvent.objects.filter(id__in=[c.head_id for c in relevant]).values_list("id", "hash"))
    for checkpoint in relevant:
        if checkpoint.head_id not in stored:
            return report.fail(
                checkpoint.head_id,
                f"events missing at the end: checkpoint {checkpoint.id} of {checkpoint.created:%Y-%m-%d %H:%M} "
                f"signed event #{checkpoint.head_id}, which is gone (newest event now #{report.head_id})",
            )
        if stored[checkpoint.head_id] != checkpoint.head_hash:
            return report.fail(checkpoint.head_id, f"content changed: event #{checkpoint.head_id} differs from "
                               f"what checkpoint {checkpoint.id} signed")  # fmt: skip
    report.checkpoints = len(relevant)
    if checkpoints and from_id is None:
        newest = checkpoints[-1]
        archived = anchor.archived_total if anchor else 0
        counted = archived + AuditEvent.objects.filter(id__lte=newest.head_id).count()
        if counted != newest.event_count:
            return report.fail(
                newest.head_id,
                f"event count changed: checkpoint {newest.id} signed {newest.event_count} events up to "
                f"#{newest.head_id}, now there are {counted}",
            )
    if to_id is None:
        _warn_if_checkpoints_stale(report, checkpoints)
    return report


def _warn_if_checkpoints_stale(report: VerifyReport, checkpoints: list[AuditCheckpoint]) -> None:
    if report.head_id is None:
        return
    newest = checkpoints[-1] if checkpoints else None
    limit = timezone.now() - timedelta(hours=settings.AUDIT_CHECKPOINT_STALE_HOURS)
    if newest is None or (newest.created < limit and newest.head_id < report.head_id):
        since = "ever" if newest is None else f"since {newest.created:%Y-%m-%d %H:%M} UTC"
        report.warnings.append(
            f"no checkpoint {since}: removing the newest events would go unnoticed until the next one "
            "(is celery beat running?)"
        )


def archive_verify(path: Path) -> VerifyReport:
    """Recompute the chain inside an archive file and compare it with the archive's record, if any."""
    report = VerifyReport()
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        header = json.loads(handle.readline())
        if header.get("type") != "opsdeck-audit-archive":
            return report.fail(None, f"{path} is not an Opsdeck audit archive")
        expected_prev = report.head_hash = header["previous_anchor_hash"]
        for line in handle:
            record = json.loads(line)
            values = {name: record[name] for name in HASHED_FIELDS}
            if event_hash(values) != record["hash"]:
                return report.fail(record["id"], f"content changed: event #{record['id']} does not match its hash")
            if record["prev_hash"] != expected_prev:
                return report.fail(record["id"], f"event missing or out of order before event #{record['id']}")
            expected_prev = record["hash"]
            report.verified += 1
            report.head_id, report.head_hash = record["id"], record["hash"]
    if report.head_id != header["last_id"]:
        return report.fail(
            report.head_id, f"archive truncated: ends at #{report.head_id}, header says #{header['last_id']}"
        )
    known = AuditArchive.objects.filter(last_id=header["last_id"]).first()
    if known is not None and known.anchor_hash != report.head_hash:
        return report.fail(report.head_id, "archive does not end in the anchor the database recorded for it")
    return report
