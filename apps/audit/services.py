"""The audit trail's one writer, plus checkpoints and archiving."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections, transaction
from django.db.backends.postgresql.base import ServerBindingCursor
from django.db.models import Max, Min, Model
from django.utils import timezone

from apps.core.events import notify
from apps.core.request_context import client_ip, current_request, current_request_id

from .choices import Outcome
from .hashing import (
    GENESIS_HASH,
    HASHED_FIELDS,
    canonical_timestamp,
    changes_text,
    checkpoint_signature,
    event_hash,
    json_normalized,
)
from .masking import masked
from .metrics import AUDIT_CHAIN_VALID
from .models import AuditArchive, AuditCheckpoint, AuditEvent, AuditSink
from .partitions import DEFAULT_PARTITION, Partition, partitions_list
from .selectors import chain_anchor, chain_heads, events_up_to_heads
from .verification import VerifyReport, chain_verify

# pg_advisory_xact_lock key that serializes appends to chain 0 ("OPSDECK" in ASCII); chain n's key is this + n.
CHAIN_LOCK_KEY = 0x4F50534445434B
USER_AGENT_LENGTH = 256
# PostgreSQL's SQLSTATE for "permission denied", raised by grants and by the append-only trigger alike.
INSUFFICIENT_PRIVILEGE = "42501"


class AuditError(Exception):
    """An audit operation was refused; the message says why."""


def _lock_chains(using: str = DEFAULT_DB_ALIAS) -> None:
    # PostgreSQL: every appender holds its chain's transaction-level advisory lock until it commits or rolls back
    # (migration 0012); taking all of them, in order, waits for every append in progress and holds off new ones.
    # SQLite: transactions begin IMMEDIATE (see settings), which takes the database's single write lock, and
    # there is one chain.
    if connections[using].vendor == "postgresql":
        with connections[using].cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_advisory_xact_lock(%s + chain)) FROM generate_series(0, %s - 1) AS chain",
                [CHAIN_LOCK_KEY, settings.AUDIT_CHAINS],
            )


_HEAD_QUERY = f"SELECT hash FROM {AuditEvent._meta.db_table} ORDER BY id DESC LIMIT 1"  # noqa: S608


def _head_hash(using: str) -> str:
    # Plain SQL: this runs on every append, and the ORM's query building costs more than the query.
    with connections[using].cursor() as cursor:
        cursor.execute(_HEAD_QUERY)
        head = cursor.fetchone()
    if head:
        return head[0]
    anchor = chain_anchor(using=using)
    return anchor.anchor_hash if anchor else GENESIS_HASH


def _object_fields(obj: Model | None) -> dict[str, str]:
    if obj is None:
        return {}
    return {
        "object_type": obj._meta.label_lower,
        "object_id": "" if obj.pk is None else str(obj.pk),
        "object_repr": str(obj)[:200],
    }


def _request_fields(request) -> dict[str, str]:
    if request is None:
        return {"ip": "", "user_agent": "", "request_id": current_request_id.get()}
    return {
        "ip": client_ip(request) or "",
        "user_agent": request.META.get("HTTP_USER_AGENT", "")[:USER_AGENT_LENGTH],
        "request_id": getattr(request, "request_id", "") or current_request_id.get(),
    }


def event_record(*, using: str = DEFAULT_DB_ALIAS, **fields) -> AuditEvent:
    """Append one event to the audit trail, inside the caller's transaction.

    ``fields`` are those of ``_event_values``: ``action``, then optionally ``actor``, ``obj``, ``changes``,
    ``outcome``, ``request``, ``object_type``, ``object_id``, ``object_repr`` and ``ip``. ``request``
    defaults to the request being served (if any) and gives the client address, user agent, request id and,
    when ``actor`` is not given, the signed-in user. ``changes`` is masked: secret-looking keys never get
    stored. ``object_*`` describe an object that is not a model instance. ``ip`` names the client of an event
    written outside its request. ``using`` names the connection (the archive service records on its own).
    """
    actor, values = _event_values(**fields)
    if connections[using].vendor == "postgresql":
        return _append_in_postgres(actor, values, using)
    return _append_in_python(actor, values, using)


def events_record(entries: Sequence[dict], *, using: str = DEFAULT_DB_ALIAS) -> list[AuditEvent]:
    """Append several events at once, in order, inside the caller's transaction: each entry holds
    ``event_record``'s keyword arguments. On PostgreSQL they are hashed and inserted by one statement under one
    lock, consecutively in one chain."""
    prepared = [_event_values(**entry) for entry in entries]
    if not prepared:
        return []
    if connections[using].vendor != "postgresql":
        with transaction.atomic(using=using, savepoint=False):
            return [_append_in_python(actor, values, using) for actor, values in prepared]
    columns = [[actor.pk if actor else None for actor, _ in prepared]]
    columns += [[values[name] for _, values in prepared] for name in _APPEND_ARGUMENTS]
    rows = _appends_run(_APPEND_BATCH_SQL, [*columns, settings.AUDIT_CHAINS], using)
    return [_appended(actor, values, row, using) for (actor, values), row in zip(prepared, rows, strict=True)]


def _event_values(
    *,
    action: str,
    actor=None,
    obj: Model | None = None,
    changes: dict | None = None,
    outcome: str = Outcome.SUCCESS,
    request=None,
    object_type: str = "",
    object_id: str = "",
    object_repr: str = "",
    ip: str = "",
) -> tuple[object, dict[str, str]]:
    """The actor (None when nobody is signed in) and the stored text of one event, before the chain."""
    request = request if request is not None else current_request.get()
    if actor is None and request is not None:
        actor = getattr(request, "user", None)
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    values = {
        "actor_username": actor.get_username() if actor is not None else "",
        "action": action,
        "object_type": object_type,
        "object_id": str(object_id),
        "object_repr": str(object_repr)[:200],
        **_object_fields(obj),
        "changes_text": changes_text(json_normalized(masked(changes or {}))),
        "outcome": str(outcome),
        **_request_fields(request),
    }
    if ip:
        values["ip"] = ip
    return actor, values


def _append_in_python(actor, values: dict, using: str) -> AuditEvent:
    # No savepoint inside a caller's transaction: if the append fails, the change it records must fail too.
    with transaction.atomic(using=using, savepoint=False):
        _lock_chains(using)
        timestamp = timezone.now()
        values = {**values, "prev_hash": _head_hash(using)}
        digest = event_hash({**values, "timestamp": canonical_timestamp(timestamp)})
        return AuditEvent.objects.using(using).create(actor=actor, timestamp=timestamp, hash=digest, chain=0, **values)


# audit_append()'s text parameters: the hashed fields it does not compute itself, in order.
_APPEND_ARGUMENTS = HASHED_FIELDS[1:-1]
_APPEND_SQL = (
    "SELECT * FROM audit_append(%s::bigint, "  # noqa: S608
    f"{', '.join(['%s::text'] * len(_APPEND_ARGUMENTS))}, %s::integer)"
)
_APPEND_BATCH_SQL = (
    "SELECT * FROM audit_append_batch(%s::bigint[], "  # noqa: S608
    f"{', '.join(['%s::text[]'] * len(_APPEND_ARGUMENTS))}, %s::integer)"
)


def _append_in_postgres(actor, values: dict, using: str) -> AuditEvent:
    # One statement (migration 0012): it takes the lock of a free chain (the transaction's chain, if it
    # appended before), reads that chain's head, hashes and inserts, so an append costs one round trip;
    # the chain's lock is held until the caller's transaction ends.
    arguments = [actor.pk if actor else None, *(values[name] for name in _APPEND_ARGUMENTS), settings.AUDIT_CHAINS]
    (row,) = _appends_run(_APPEND_SQL, arguments, using)
    return _appended(actor, values, row, using)


class _PreparedCursor(ServerBindingCursor):
    """Binds parameters on the server and prepares every statement it runs (psycopg keeps one per connection)."""

    def execute(self, query, params=None, *, prepare=None, binary=None):
        return super().execute(query, params, prepare=True, binary=binary)


def _appends_run(sql: str, arguments: list, using: str) -> list[tuple]:
    """Run an append as a prepared statement, through Django's cursor wrapper (same transaction, error types,
    query log).

    Django binds parameters on the client and prepares nothing, so PostgreSQL would parse and plan every append
    anew; prepared once per connection, an append costs about a tenth less. (A pooler in transaction mode, which
    Opsdeck does not use, would need this off.)
    """
    connection = connections[using]
    connection.ensure_connection()
    raw = _PreparedCursor(connection.connection)
    cursor = connection.make_debug_cursor(raw) if connection.queries_logged else connection.make_cursor(raw)
    with cursor:
        cursor.execute(sql, arguments)
        return cursor.fetchall()


_STORED_FIELDS = [field.attname for field in AuditEvent._meta.concrete_fields]


def _appended(actor, values: dict, row: tuple, using: str) -> AuditEvent:
    """The event as stored, from what the append function returned: (id, timestamp, prev_hash, hash, chain)."""
    event_id, timestamp, prev_hash, digest, chain = row
    stored = {"id": event_id, "timestamp": timestamp, "actor_id": actor.pk if actor else None, "prev_hash": prev_hash,
              "hash": digest, "chain": chain, **values}  # fmt: skip
    # from_db: a quarter of the time keyword construction takes, on every append.
    event = AuditEvent.from_db(using, _STORED_FIELDS, [stored[name] for name in _STORED_FIELDS])
    if actor is not None:
        event.actor = actor
    return event


def _signing_key() -> bytes:
    return settings.AUDIT_SIGNING_KEY.encode()


def _archived_total(using: str = DEFAULT_DB_ALIAS) -> int:
    anchor = chain_anchor(using=using)
    return anchor.archived_total if anchor else 0


# Checkpoints are signed one at a time (each covers the previous one's signature); appends go on meanwhile.
CHECKPOINT_LOCK_KEY = CHAIN_LOCK_KEY - 1


def checkpoint_create() -> AuditCheckpoint | None:
    """Sign the head of every chain; None when the trail is empty."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CHECKPOINT_LOCK_KEY])
        heads = chain_heads()
        if not heads:
            return None
        head_id, head_hash = max(heads.values())
        count = _archived_total() + events_up_to_heads(heads).count()
        previous = AuditCheckpoint.objects.order_by("-id").values_list("signature", flat=True).first() or ""
        signature = checkpoint_signature(
            _signing_key(), head_id=head_id, head_hash=head_hash, event_count=count, previous=previous, heads=heads
        )
        return AuditCheckpoint.objects.create(
            head_id=head_id,
            head_hash=head_hash,
            event_count=count,
            previous_signature=previous,
            heads=heads,
            signature=signature,
        )


def checkpoint_record() -> str:
    """Sign the head of the chain (hourly beat task); returns what was done."""
    checkpoint = checkpoint_create()
    if checkpoint is None:
        return "The audit trail is empty; no checkpoint needed."
    return f"Signed checkpoint at event #{checkpoint.head_id} ({checkpoint.event_count} events in all)."


def chain_check(*, from_id: int | None = None) -> VerifyReport:
    """Verify the chain (from ``from_id``, else all of it); a full check sets the gauge, and a broken chain or
    checkpoint is announced (``audit.chain_invalid`` / ``audit.checkpoint_invalid``) whoever ran the check."""
    report = chain_verify(from_id=from_id)
    if from_id is None:
        AUDIT_CHAIN_VALID.set(1 if report.ok else 0)
    if not report.ok:
        notify(
            f"audit.{report.broken}_invalid",
            data={"bad_event_id": report.bad_event_id, "problem": report.problem, "path": "/admin/audit/auditevent/"},
            summary=report.summary(),
        )
    return report


def chain_verify_and_report() -> str:
    """Verify the whole chain (daily beat task), publish the result as a gauge; raise when broken."""
    report = chain_check()
    if not report.ok:
        raise AuditError(report.summary())
    return "; ".join([report.summary(), *report.warnings])


ARCHIVE_BATCH = 5000


def archive_create(*, before: datetime, output: Path) -> AuditArchive:
    """Move events older than ``before`` into a gzip JSONL file, keeping the chain verifiable.

    Refuses dates inside the retention period and a chain that does not verify.
    The file starts with a header naming the anchor it continues from; the rows
    are deleted only after the file is complete, in the same transaction that
    records the new anchor. All of it runs on the AUDIT_ARCHIVE_DATABASE connection:
    on PostgreSQL only the archive role (or the tables' owner) may remove events.
    """
    retention_limit = timezone.now() - timezone.timedelta(days=settings.AUDIT_RETENTION_DAYS)
    if before > retention_limit:
        raise AuditError(
            f"Events younger than AUDIT_RETENTION_DAYS ({settings.AUDIT_RETENTION_DAYS} days) must be kept: "
            f"--before must be on or before {retention_limit:%Y-%m-%d %H:%M} UTC."
        )
    if output.exists():
        raise AuditError(f"{output} already exists; choose a new file name.")
    report = chain_verify()
    if not report.ok:
        raise AuditError(f"The audit chain does not verify ({report.problem}); nothing was archived.")
    using = settings.AUDIT_ARCHIVE_DATABASE
    try:
        return _archive_prefix(before, output, using)
    except BaseException as exc:
        output.unlink(missing_ok=True)  # no archive file without the matching database change
        if isinstance(exc, DatabaseError) and getattr(exc.__cause__, "sqlstate", None) == INSUFFICIENT_PRIVILEGE:
            role = connections[using].settings_dict["USER"] or "(default)"
            raise AuditError(
                f"The database role {role} may not remove audit events ({exc.__cause__}); set "
                "AUDIT_ARCHIVE_DATABASE_URL to the archive role (README: Database roles)."
            ) from None
        raise


def _remove_archived(last_id: int, before: datetime, using: str) -> None:
    with connections[using].cursor() as cursor:
        if connections[using].vendor != "postgresql":
            # One statement: the ORM would load every archived row first.
            cursor.execute(f"DELETE FROM {AuditEvent._meta.db_table} WHERE id <= %s", [last_id])  # noqa: S608
            return
        whole, leftovers = _archived_partitions(cursor, last_id, before, using)
        # Whole months go at once (migration 0013): detached and dropped, not deleted row by row. Like the delete
        # below, only through a SECURITY DEFINER function that the archive role alone may execute, and that checks
        # that an archive row anchors the partition's newest event before it detaches anything.
        for partition in whole:
            cursor.execute("SELECT audit_archive_detach(%s)", [partition.name])
        if leftovers:
            # The rest (a partly archived month, the default partition): the one way past the append-only trigger
            # (migration 0008), which deletes only a prefix an archive row anchors.
            cursor.execute("SELECT audit_archive_delete(%s)", [last_id])


def _archived_partitions(cursor, last_id: int, before: datetime, using: str) -> tuple[list[Partition], bool]:
    """The monthly partitions that hold archived events only (oldest first), and whether archived events remain
    outside them. A month that ends by ``before`` holds only events older than it: archived, as they are a prefix."""
    whole = [p for p in partitions_list(using=using) if p.month is not None and p.end <= before]
    table = AuditEvent._meta.db_table
    if not whole:
        return [], True
    cursor.execute(
        f"SELECT EXISTS (SELECT 1 FROM {table} WHERE id <= %s AND timestamp >= %s) "  # noqa: S608
        f"OR EXISTS (SELECT 1 FROM {DEFAULT_PARTITION} WHERE id <= %s)",
        [last_id, whole[-1].end, last_id],
    )
    leftovers = cursor.fetchone()[0]
    if leftovers:
        # audit_archive_delete checks the anchor event, which must still be there: its month is deleted row by row.
        cursor.execute(f"SELECT timestamp FROM {table} WHERE id = %s", [last_id])  # noqa: S608
        anchored_at = cursor.fetchone()[0]
        whole = [p for p in whole if not p.start <= anchored_at < p.end]
    return whole, leftovers


def _archive_prefix(before: datetime, output: Path, using: str) -> AuditArchive:
    with transaction.atomic(using=using):
        _lock_chains(using)
        events = AuditEvent.objects.using(using)
        selected = events.filter(timestamp__lt=before).order_by("id")
        bounds = selected.aggregate(first_id=Min("id"), last_id=Max("id"))
        first_id, last_id = bounds["first_id"], bounds["last_id"]
        if first_id is None:
            raise AuditError(f"No audit events older than {before:%Y-%m-%d %H:%M} UTC; nothing to archive.")
        if events.filter(id__lt=last_id, timestamp__gte=before).exists():
            raise AuditError("Event timestamps are not in id order; refusing to archive a non-prefix of the chain.")
        _refuse_unforwarded(last_id)
        previous_anchor = chain_anchor(using=using)
        header = {
            "type": "opsdeck-audit-archive",
            "version": 2,
            "previous_anchor_hash": previous_anchor.anchor_hash if previous_anchor else GENESIS_HASH,
            # Where each chain continues from; a chain not named starts at its genesis (hashing.chain_genesis).
            "previous_anchors": previous_anchor.anchors if previous_anchor else {},
            "first_id": first_id,
            "last_id": last_id,
            "before": before.isoformat(),
        }
        count, anchors = _write_archive(output, header, selected)
        file_sha256 = _file_sha256(output)
        # The anchor first: the delete function checks that it names the last removed event.
        archive = AuditArchive.objects.using(using).create(
            before=before,
            first_id=first_id,
            last_id=last_id,
            event_count=count,
            archived_total=_archived_total(using) + count,
            previous_anchor_hash=header["previous_anchor_hash"],
            anchor_hash=selected.values_list("hash", flat=True).get(id=last_id),
            anchors=anchors,
            file_name=str(output),
            file_sha256=file_sha256,
        )
        _remove_archived(last_id, before, using)
        event_record(
            action="audit.archived",
            obj=archive,
            changes={"events": count, "first_id": first_id, "last_id": last_id, "sha256": file_sha256},
            using=using,
        )
    return archive


def _refuse_unforwarded(last_id: int) -> None:
    # An archived event can no longer be forwarded: every active sink must have accepted the whole prefix. Read
    # on the default connection: the archive role has no rights on the sinks.
    behind = AuditSink.objects.using(DEFAULT_DB_ALIAS).filter(active=True, cursor__lt=last_id).order_by("cursor")
    sink = behind.first()
    if sink is not None:
        raise AuditError(
            f"Audit sink {sink.name!r} has accepted events only up to #{sink.cursor}; archiving up to #{last_id} "
            "would remove events it has not received. Let it catch up (admin: Audit sinks) or deactivate it first."
        )


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_archive(output: Path, header: dict, events) -> tuple[int, dict[str, str]]:
    """Write the header and ``events`` in id order; returns their number and, per chain, where it now continues."""
    count, anchors = 0, dict(header["previous_anchors"])
    with gzip.open(output, "wt", encoding="utf-8") as handle:
        handle.write(json.dumps(header) + "\n")
        for row in events.values_list("id", "chain", *HASHED_FIELDS, "hash").iterator(chunk_size=ARCHIVE_BATCH):
            record = dict(zip(("id", "chain", *HASHED_FIELDS, "hash"), row, strict=True))
            record["timestamp"] = canonical_timestamp(record["timestamp"])
            handle.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
            count, anchors[str(record["chain"])] = count + 1, record["hash"]
    return count, anchors
