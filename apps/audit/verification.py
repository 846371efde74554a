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

from .hashing import (
    GENESIS_HASH,
    HASHED_FIELDS,
    POSTGRES_HASH_SQL,
    chain_genesis,
    checkpoint_signature,
    event_hash,
    row_hash,
)
from .models import AuditArchive, AuditCheckpoint, AuditEvent
from .selectors import chain_anchor, events_up_to_heads

VERIFY_BATCH = 5000


@dataclass
class VerifyReport:
    verified: int = 0
    head_id: int | None = None
    head_hash: str = GENESIS_HASH
    chains: int = 0
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
        chains = f" in {self.chains} chains" if self.chains > 1 else ""
        return f"Verified {self.verified} events{chains} and {self.checkpoints} checkpoints; head {head}"

    def fail(self, event_id: int | None, problem: str, *, broken: str = "chain") -> VerifyReport:
        self.bad_event_id, self.problem, self.broken = event_id, problem, broken
        return self


def chain_verify(*, from_id: int | None = None, to_id: int | None = None) -> VerifyReport:
    """Recompute every event's hash and its link to the event before it in its chain, then check the checkpoints.

    From ``from_id`` on, each chain's first stored link is trusted as its starting point; otherwise a chain
    starts at its archive anchor or its genesis. With ``to_id``, only events up to it (and the checkpoints that
    signed them) are checked. The first problem reported is the one at the lowest event id, whichever chain.
    """
    report = VerifyReport()
    anchor = chain_anchor()
    expected = _chain_starts(anchor, from_id)
    last_ids: dict[int, int] = {}
    for segment in _segments_checked(from_id or 0, to_id):
        problem = _first_problem(segment, expected, last_ids)
        if problem is not None:
            return report.fail(*problem)
        for chain, span in segment.spans.items():
            report.verified += span.count
            expected[chain], last_ids[chain] = span.last_hash, span.last_id
            if report.head_id is None or span.last_id > report.head_id:
                report.head_id, report.head_hash = span.last_id, span.last_hash
    if report.head_id is None:
        report.head_hash = expected.get(0, GENESIS_HASH)
    report.chains = len(last_ids)
    return _checkpoints_verify(report, anchor, from_id, to_id)


class _ChainStarts(dict):
    """Per chain, the hash its next event must link to; a chain not seen yet starts at its genesis."""

    def __missing__(self, chain: int) -> str:
        return chain_genesis(chain)


def _chain_starts(anchor: AuditArchive | None, from_id: int | None) -> _ChainStarts:
    if from_id is not None:
        first_links = (
            AuditEvent.objects.filter(id__gte=from_id)
            .order_by("chain", "id")
            .distinct("chain")
            .values_list("chain", "prev_hash")
            if connection.vendor == "postgresql"
            else _first_links_in_python(from_id)
        )
        return _ChainStarts(first_links)
    return _ChainStarts({int(chain): hash_ for chain, hash_ in (anchor.anchors if anchor else {}).items()})


def _first_links_in_python(from_id: int) -> list[tuple[int, str]]:
    firsts: dict[int, str] = {}
    for chain, prev_hash in AuditEvent.objects.filter(id__gte=from_id).order_by("id").values_list("chain", "prev_hash"):
        firsts.setdefault(chain, prev_hash)
    return list(firsts.items())


def _first_problem(segment: _Segment, expected: dict[int, str], last_ids: dict[int, int]) -> tuple[int, str] | None:
    """The lowest-id problem of one id range: a chain that does not continue from where the ranges before left
    it, or the range's own first bad event."""
    problems = [
        (span.first_id, _broken_link_problem(span.first_id, last_ids.get(chain), span.first_prev))
        for chain, span in segment.spans.items()
        if span.first_prev != expected[chain]
    ]
    if segment.bad_id is not None:
        if segment.bad_link is None:
            problems.append((segment.bad_id, f"content changed: event #{segment.bad_id} does not match its hash"))
        else:
            span = segment.spans.get(segment.bad_chain)
            previous = span.last_id if span is not None else last_ids.get(segment.bad_chain)
            problems.append((segment.bad_id, _broken_link_problem(segment.bad_id, previous, segment.bad_link)))
    return min(problems, default=None)


@dataclass
class _Span:
    """One chain's events within one id range, up to the range's first problem."""

    first_id: int
    first_prev: str
    last_id: int
    last_hash: str
    count: int


@dataclass
class _Segment:
    """The result of checking one id range: each chain's span in it, and the range's first problem, if any.

    The spans describe the events before that problem.
    """

    spans: dict[int, _Span] = field(default_factory=dict)
    bad_id: int | None = None
    bad_chain: int | None = None
    bad_link: str | None = None  # the stored prev_hash of a broken link; None for changed content


def _segment_check(from_id: int, to_id: int) -> _Segment:
    if connection.vendor == "postgresql":
        return _segment_check_in_postgres(from_id, to_id)
    segment = _Segment()
    events = AuditEvent.objects.filter(id__gte=from_id, id__lte=to_id).order_by("id")
    rows = events.values_list("id", "chain", *HASHED_FIELDS, "hash").iterator(chunk_size=VERIFY_BATCH)
    for event_id, chain, *content, stored_hash in rows:
        prev_hash = content[-1]
        if row_hash(content) != stored_hash:
            segment.bad_id, segment.bad_chain = event_id, chain
            break
        span = segment.spans.get(chain)
        if span is None:
            span = segment.spans[chain] = _Span(event_id, prev_hash, event_id, stored_hash, 0)
        elif prev_hash != span.last_hash:
            segment.bad_id, segment.bad_chain, segment.bad_link = event_id, chain, prev_hash
            break
        span.count += 1
        span.last_id, span.last_hash = event_id, stored_hash
    return segment


_TABLE = AuditEvent._meta.db_table
# PostgreSQL recomputes each hash and compares each link with the hash of the event before it in its chain
# itself, so only the first problem in the range (if any) crosses the wire.
_POSTGRES_FIRST_PROBLEM = (
    "SELECT id, chain, content_ok, prev_hash FROM ("  # noqa: S608
    f"SELECT id, chain, ({POSTGRES_HASH_SQL}) = hash AS content_ok, prev_hash, "
    "lag(hash) OVER (PARTITION BY chain ORDER BY id) AS linked "
    f"FROM {_TABLE} WHERE id >= %s AND id <= %s) AS checked "
    "WHERE NOT content_ok OR prev_hash <> linked ORDER BY id LIMIT 1"
)
# Per chain, the first and last event before the problem (or the range's end) and their links.
_POSTGRES_SPANS = (
    "SELECT chain, count(*), min(id), max(id), "  # noqa: S608
    "(array_agg(prev_hash ORDER BY id))[1], (array_agg(hash ORDER BY id DESC))[1] "
    f"FROM {_TABLE} WHERE id >= %s AND id < %s GROUP BY chain"
)


def _segment_check_in_postgres(from_id: int, to_id: int) -> _Segment:
    segment = _Segment()
    with connection.cursor() as cursor:
        cursor.execute(_POSTGRES_FIRST_PROBLEM, [from_id, to_id])
        problem = cursor.fetchone()
        if problem is not None:
            segment.bad_id, segment.bad_chain = problem[0], problem[1]
            segment.bad_link = None if not problem[2] else problem[3]
        cursor.execute(_POSTGRES_SPANS, [from_id, segment.bad_id if problem else to_id + 1])
        for chain, count, first_id, last_id, first_prev, last_hash in cursor.fetchall():
            segment.spans[chain] = _Span(first_id, first_prev, last_id, last_hash, count)
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
            heads=checkpoint.heads,
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
    signed = [
        (head_id, head_hash, checkpoint)
        for checkpoint in relevant
        for head_id, head_hash in _signed_heads(checkpoint).values()
        if head_id >= lowest
    ]
    stored = dict(AuditEvent.objects.filter(id__in=[head_id for head_id, _, _ in signed]).values_list("id", "hash"))
    for head_id, head_hash, checkpoint in sorted(signed, key=lambda head: head[0]):
        if head_id not in stored:
            return report.fail(
                head_id,
                f"events missing at the end: checkpoint {checkpoint.id} of {checkpoint.created:%Y-%m-%d %H:%M} "
                f"signed event #{head_id}, which is gone (newest event now #{report.head_id})",
            )
        if stored[head_id] != head_hash:
            return report.fail(head_id, f"content changed: event #{head_id} differs from what checkpoint "
                               f"{checkpoint.id} signed")  # fmt: skip
    report.checkpoints = len(relevant)
    if checkpoints and from_id is None:
        newest = checkpoints[-1]
        archived = anchor.archived_total if anchor else 0
        counted = archived + events_up_to_heads(_signed_heads(newest)).count()
        if counted != newest.event_count:
            return report.fail(
                newest.head_id,
                f"event count changed: checkpoint {newest.id} signed {newest.event_count} events up to "
                f"#{newest.head_id}, now there are {counted}",
            )
    if to_id is None:
        _warn_if_checkpoints_stale(report, checkpoints)
    return report


def _signed_heads(checkpoint: AuditCheckpoint) -> dict[str, list]:
    # A checkpoint signed before there were several chains names the head of the one chain there was.
    return checkpoint.heads or {"0": [checkpoint.head_id, checkpoint.head_hash]}


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
        report.head_hash = header["previous_anchor_hash"]
        # Version 1 archives hold the one chain there was; version 2 name where each chain continued from.
        expected = _ChainStarts(
            {int(chain): hash_ for chain, hash_ in header.get("previous_anchors", {}).items()}
            if header.get("version", 1) >= 2
            else {0: header["previous_anchor_hash"]}
        )
        for line in handle:
            record = json.loads(line)
            values = {name: record[name] for name in HASHED_FIELDS}
            chain = record.get("chain", 0)
            if event_hash(values) != record["hash"]:
                return report.fail(record["id"], f"content changed: event #{record['id']} does not match its hash")
            if record["prev_hash"] != expected[chain]:
                return report.fail(record["id"], f"event missing or out of order before event #{record['id']}")
            expected[chain] = record["hash"]
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
