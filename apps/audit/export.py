"""Streaming export of audit events as CSV or JSON Lines, in constant memory."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Iterable, Iterator

from asgiref.sync import sync_to_async
from django.db import connections
from django.db.models import CharField, F, Func, QuerySet

from .hashing import HASHED_FIELDS, POSTGRES_TIMESTAMP_FORMAT, canonical_timestamp

# What an export holds: id, the hashed fields (``changes`` as its canonical JSON text) and hash.
EXPORT_FIELDS = ("id", *("changes" if name == "changes_text" else name for name in HASHED_FIELDS), "hash")
# The columns they are read from.
EXPORT_COLUMNS = tuple("changes_text" if name == "changes" else name for name in EXPORT_FIELDS)
EXPORT_FORMATS = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}
ROWS_PER_CHUNK = 2000
_TIMESTAMP = EXPORT_FIELDS.index("timestamp")


def _csv_block(rows: list[tuple]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(
        (*row[:_TIMESTAMP], canonical_timestamp(row[_TIMESTAMP]), *row[_TIMESTAMP + 1 :]) for row in rows
    )
    return buffer.getvalue()


def _jsonl_block(rows: list[tuple]) -> str:
    lines = []
    for row in rows:
        record = dict(zip(EXPORT_FIELDS, row, strict=True))
        record["timestamp"] = canonical_timestamp(record["timestamp"])
        record["changes"] = json.loads(record["changes"])
        lines.append(json.dumps(record, sort_keys=True, ensure_ascii=False))
    return "\n".join(lines) + "\n"


def _header(fmt: str) -> str:
    return ",".join(EXPORT_FIELDS) + "\r\n" if fmt == "csv" else ""


def _rows(events: QuerySet) -> QuerySet:
    return events.order_by("id").values_list(*EXPORT_COLUMNS)


def export_chunks(events: QuerySet, fmt: str) -> Iterator[bytes]:
    """Encoded blocks of the export, in constant memory.

    CSV on PostgreSQL is written by the server itself (COPY ... TO STDOUT),
    several times faster than formatting rows in Python; otherwise rows come
    from a server-side cursor and are formatted here.
    """
    yield _header(fmt).encode()
    if fmt == "csv" and connections[events.db].vendor == "postgresql":
        yield from _postgres_csv_blocks(events)
        return
    block_of = _csv_block if fmt == "csv" else _jsonl_block
    yield from (block_of(rows).encode() for rows in _batched(_rows(events).iterator(chunk_size=ROWS_PER_CHUNK)))


# The timestamp as PostgreSQL writes it: the same ISO form as elsewhere (``changes`` is already the
# canonical JSON text the hash covers).
_TIMESTAMP_TEXT = Func(
    F("timestamp"),
    template=f"to_char(%(expressions)s AT TIME ZONE 'UTC', '{POSTGRES_TIMESTAMP_FORMAT}')",
    output_field=CharField(),
)
COPY_BLOCK_BYTES = 256 * 1024


def _postgres_csv_blocks(events: QuerySet) -> Iterator[bytes]:
    columns = ["timestamp_text" if name == "timestamp" else name for name in EXPORT_COLUMNS]
    query = events.annotate(timestamp_text=_TIMESTAMP_TEXT).order_by("id").values_list(*columns)
    select_sql, params = query.query.sql_with_params()
    statement = f"COPY ({select_sql}) TO STDOUT WITH (FORMAT csv)"
    with connections[events.db].cursor() as wrapper, wrapper.cursor.copy(statement, params) as copy:
        # libpq hands over small pieces; larger blocks mean fewer hops in an ASGI response.
        pending = bytearray()
        for piece in copy:
            pending += piece
            if len(pending) >= COPY_BLOCK_BYTES:
                yield bytes(pending)
                pending.clear()
        if pending:
            yield bytes(pending)


def postgres_csv_rows(events: QuerySet) -> Iterator[bytes] | None:
    """The export's CSV rows (no header) written by PostgreSQL itself; None on another database."""
    if connections[events.db].vendor != "postgresql":
        return None
    return _postgres_csv_blocks(events)


async def export_chunks_async(events: QuerySet, fmt: str) -> AsyncIterator[bytes]:
    """The same blocks as an async iterator, for an ASGI streaming response.

    Django would buffer a sync iterator whole under ASGI. Each block is read in
    the request's database thread (thread-sensitive), where the server-side
    cursor lives; it is closed there too when the client goes away.
    """
    chunks = export_chunks(events, fmt)
    next_block = sync_to_async(next, thread_sensitive=True)
    try:
        while (block := await next_block(chunks, None)) is not None:
            yield block
    finally:
        await sync_to_async(chunks.close, thread_sensitive=True)()


def _batched(rows: Iterable[tuple]) -> Iterator[list[tuple]]:
    batch: list[tuple] = []
    for row in rows:
        batch.append(row)
        if len(batch) == ROWS_PER_CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch
