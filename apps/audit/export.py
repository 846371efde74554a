"""Streaming export of audit events as CSV or JSON Lines, in constant memory."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator

from django.db import connections
from django.db.models import CharField, F, Func, QuerySet, TextField

from apps.core.csv_cells import CSV_CELL_SQL_FUNCTION, SafeCsvWriter

from .hashing import HASHED_FIELDS, POSTGRES_TIMESTAMP_FORMAT, canonical_timestamp

# What an export holds: id, the hashed fields (``changes`` as its canonical JSON text), hash, and the chain whose
# previous event ``prev_hash`` names.
EXPORT_FIELDS = ("id", *("changes" if name == "changes_text" else name for name in HASHED_FIELDS), "hash", "chain")
# The columns they are read from.
EXPORT_COLUMNS = tuple("changes_text" if name == "changes" else name for name in EXPORT_FIELDS)
EXPORT_FORMATS = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}
ROWS_PER_CHUNK = 2000
_TIMESTAMP = EXPORT_FIELDS.index("timestamp")


def _csv_block(rows: list[tuple]) -> str:
    buffer = io.StringIO()
    SafeCsvWriter(buffer).writerows(
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
    from a server-side cursor and are formatted here. Either way a text cell
    that a spreadsheet would run as a formula starts with ``'`` (see
    ``apps.core.csv_cells``), so CSV is for reading; JSON Lines holds the exact
    values each hash covers.
    """
    yield _header(fmt).encode()
    if fmt == "csv" and connections[events.db].vendor == "postgresql":
        yield from _postgres_csv_blocks(events)
        return
    block_of = _csv_block if fmt == "csv" else _jsonl_block
    rows = _rows(events).iterator(chunk_size=ROWS_PER_CHUNK)
    try:
        for batch in _batched(rows):
            yield block_of(batch).encode()
    finally:
        # Closes the server-side cursor now, in this thread, however the export ends (a row that does not
        # serialise included). Left to the garbage collector, it would be closed later from any thread, on a
        # connection already back in the pool and perhaps locked by its next user: a deadlock.
        rows.close()


# The timestamp as PostgreSQL writes it: the same ISO form as elsewhere (``changes`` is already the
# canonical JSON text the hash covers).
_TIMESTAMP_TEXT = Func(
    F("timestamp"),
    template=f"to_char(%(expressions)s AT TIME ZONE 'UTC', '{POSTGRES_TIMESTAMP_FORMAT}')",
    output_field=CharField(),
)
COPY_BLOCK_BYTES = 256 * 1024


# Cells the server writes itself: numbers, hex digests, and the timestamp's text (it starts with its year).
_SERVER_MADE = frozenset({"id", "timestamp", "prev_hash", "hash", "chain"})


def _postgres_cell(column: str):
    # Every other column may hold text from outside (a User-Agent, a username tried at the login page): it goes
    # through the SQL twin of csv_cell, so that no cell reaches a spreadsheet as a formula.
    if column == "timestamp":
        return _TIMESTAMP_TEXT
    if column in _SERVER_MADE:
        return F(column)
    return Func(F(column), function=CSV_CELL_SQL_FUNCTION, output_field=TextField())


_POSTGRES_CELLS = {f"cell_{column}": _postgres_cell(column) for column in EXPORT_COLUMNS}


def _postgres_csv_blocks(events: QuerySet) -> Iterator[bytes]:
    query = events.annotate(**_POSTGRES_CELLS).order_by("id").values_list(*_POSTGRES_CELLS)
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


def _batched(rows: Iterable[tuple]) -> Iterator[list[tuple]]:
    batch: list[tuple] = []
    for row in rows:
        batch.append(row)
        if len(batch) == ROWS_PER_CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch
