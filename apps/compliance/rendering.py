"""Renderers: report sections into CSV (or a zip of CSVs), JSON or PDF, streamed into a binary file.

``render(sections, fmt, out, meta)`` consumes each section's rows exactly once and returns the row count per
section. CSV and JSON write row by row. A PDF needs the row counts and summaries on its cover before the rows,
so its rows are first spooled to a temporary file (constant memory), then laid out in chunks (``pdf_layout``, with
the words people read from ``pdf_text``).

The *rows digest* is the SHA-256 over every row, in order, each as the line
``json.dumps([section_name, row], sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\\n"`` (UTF-8),
with values as the JSON report holds them. It is printed in the PDF's footer and closes the JSON report, so a
PDF and a JSON report of the same data can be shown to hold the same rows. (A file cannot contain its own
SHA-256: that, and the signature, are in the manifest beside the file.)
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import hashlib
import heapq
import io
import itertools
import json
import tempfile
import uuid
import zipfile
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from apps.core.csv_cells import csv_cell

FORMATS = ("csv", "json", "pdf")
# A PDF of more rows than this is refused: reportlab keeps the finished pages in memory until the file is
# written, and nobody reads a 1,000-page table. CSV and JSON have no limit.
PDF_MAX_ROWS = 50_000
# Rows per PDF table: one table at a time is laid out, so memory does not grow with the report.
PDF_CHUNK_ROWS = 500
# Longer cell values are cut in the PDF (with an ellipsis); CSV and JSON hold them whole.
PDF_MAX_CELL_CHARS = 600
PDF_SUMMARY_VALUE_CHARS = 300
# Words kept per column to size it by (see SpooledSection).
PDF_LONG_WORDS = 8


class RenderError(ValueError):
    """A report cannot be rendered in the format asked for; the message says why and what to do instead."""

    def __init__(self, message: str, field: str = "format"):
        super().__init__(message)
        self.message, self.field = message, field


# --- Values


def plain(value):
    """A value as the reports hold it: JSON types, with times in ISO 8601 and anything else as text."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [plain(item) for item in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    return str(value)


def canonical(value) -> str:
    """Canonical JSON text: sorted keys, no spaces, UTF-8 characters kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def cell_text(value) -> str:
    """A value as one CSV or PDF cell: empty for None, lower-case booleans, JSON for lists and mappings."""
    value = plain(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return canonical(value)
    return str(value)


class RowsDigest:
    """The rows digest described in the module's docstring, fed one row at a time."""

    def __init__(self):
        self._sha = hashlib.sha256()

    def line(self, section_name: str, row: list) -> bytes:
        encoded = (canonical([section_name, row]) + "\n").encode()
        self._sha.update(encoded)
        return encoded

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


def _plain_row(section, row) -> list:
    values = [plain(value) for value in row]
    if len(values) != len(section.columns):
        raise RenderError(
            f"Section {section.name!r} has {len(section.columns)} columns but a row with {len(values)} values.",
            "kind",
        )
    return values


def _finding_index(section) -> int | None:
    column = getattr(section, "findings_column", None)
    if not column:
        return None
    if column not in section.columns:
        raise RenderError(f"Section {section.name!r}: findings column {column!r} is not one of its columns.", "kind")
    return list(section.columns).index(column)


def _summary(section) -> dict:
    return plain(dict(getattr(section, "summary", None) or {}))


# --- Entry point


def render(sections: Iterable, fmt: str, out: BinaryIO, meta: dict) -> dict[str, int]:
    """Write the sections to ``out`` in ``fmt`` (csv, json or pdf); returns the number of rows per section.

    ``meta`` holds title, kind, period_start, period_end, generated_at, generated_by, filters and
    audit_head_hash. Each section's rows are consumed once, as they stream.
    """
    fmt = str(fmt)
    if fmt == "csv":
        return _render_csv(iter(sections), out, meta)
    if fmt == "json":
        return _render_json(sections, out, meta)
    if fmt == "pdf":
        return _render_pdf(sections, out, meta)
    raise RenderError(f"Unknown report format {fmt!r}: choose one of {', '.join(FORMATS)}.")


# --- CSV


def _write_csv(section, text: io.TextIOBase) -> int:
    if getattr(section, "csv_rows", None) is not None:
        # Rows the database already wrote as CSV (an audit trail of millions), formula cells already
        # neutralised by the same rule in SQL: copied through as they are.
        csv.writer(text, lineterminator="\n").writerow(section.columns)
        text.flush()
        for block in section.csv_rows:
            text.buffer.write(block)
        return section.row_count
    writer = csv.writer(text)
    writer.writerow(section.columns)
    count = 0
    for row in section.rows:
        # Text is neutralised before cell_text turns numbers into text too, so a negative number stays a
        # number (hence a plain csv.writer, not SafeCsvWriter, which would see only text).
        writer.writerow([cell_text(csv_cell(value)) for value in _plain_row(section, row)])
        count += 1
    return count


def _zip_time(meta: dict) -> tuple[int, int, int, int, int, int]:
    # Entries carry the generation time, not the wall clock at writing: the same report zips the same way.
    try:
        moment = dt.datetime.fromisoformat(str(meta.get("generated_at")))
    except ValueError:
        moment = dt.datetime(1980, 1, 1)
    return max(moment, dt.datetime(1980, 1, 1, tzinfo=moment.tzinfo)).timetuple()[:6]


def _render_csv(sections: Iterator, out: BinaryIO, meta: dict) -> dict[str, int]:
    first = next(sections, None)
    if first is None:
        raise RenderError("The report has no sections.", "kind")
    second = next(sections, None)
    counts: dict[str, int] = {}
    if second is None:
        text = io.TextIOWrapper(out, encoding="utf-8", newline="")
        counts[first.name] = _write_csv(first, text)
        text.flush()
        text.detach()
        return counts
    date_time = _zip_time(meta)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for section in itertools.chain([first, second], sections):
            name = _unique(section.name, counts)
            info = zipfile.ZipInfo(f"{name}.csv", date_time=date_time)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            # force_zip64: the size is unknown while streaming and an audit trail may pass 2 GiB.
            with archive.open(info, "w", force_zip64=True) as member:
                text = io.TextIOWrapper(member, encoding="utf-8", newline="")
                counts[name] = _write_csv(section, text)
                text.flush()
                text.detach()
    return counts


def _unique(name: str, taken: dict) -> str:
    candidate, number = name, 2
    while candidate in taken:
        candidate, number = f"{name}-{number}", number + 1
    return candidate


# --- JSON


def _render_json(sections: Iterable, out: BinaryIO, meta: dict) -> dict[str, int]:
    digest = RowsDigest()
    counts: dict[str, int] = {}
    out.write(b'{"meta":' + canonical(plain(meta)).encode() + b',"sections":{')
    for index, section in enumerate(sections):
        name = _unique(section.name, counts)
        _finding_index(section)
        head = {"title": section.title, "columns": list(section.columns), "findings_column": section.findings_column}
        out.write(b"," if index else b"")
        # Keys in a fixed order with rows before the summary: a summary may be filled in while rows stream.
        out.write(canonical(name).encode() + b":{")
        out.write(b",".join(canonical(key).encode() + b":" + canonical(head[key]).encode() for key in head))
        out.write(b',"rows":[')
        count = 0
        for row in section.rows:
            values = _plain_row(section, row)
            digest.line(name, values)
            out.write((b",\n" if count else b"\n") + canonical(values).encode())
            count += 1
        out.write(b'],"summary":' + canonical(_summary(section)).encode() + b"}")
        counts[name] = count
    out.write(b'},"rows_sha256":' + canonical(digest.hexdigest()).encode() + b"}\n")
    return counts


# --- PDF


class SpooledSection:
    """What the PDF needs of a section once its rows are on disk."""

    def __init__(self, name: str, section):
        self.name, self.title = name, str(section.title)
        self.columns = [str(column) for column in section.columns]
        self.finding_index = _finding_index(section)
        self.count = 0
        self.findings = 0
        self.summary: dict = {}
        # Per column, the few longest words of any row as the PDF shows them (a min-heap by length): columns are
        # made as wide as the widest of them, so that lines break between words. Several, because the longest in
        # characters is not always the widest in print ("changed" is wider than "created").
        self.long_words: list[list[tuple[int, str]]] = [[] for _ in self.columns]

    def note(self, values: list) -> None:
        from .pdf_text import longest_word, shown

        self.count += 1
        if self.finding_index is not None and values[self.finding_index] not in (None, "", [], {}):
            self.findings += 1
        for heap, value in zip(self.long_words, values, strict=True):
            word = longest_word(shown(value)[:PDF_MAX_CELL_CHARS])
            if len(heap) < PDF_LONG_WORDS and (len(word), word) not in heap:
                heapq.heappush(heap, (len(word), word))
            elif heap and len(word) >= heap[0][0] and (len(word), word) not in heap:
                heapq.heapreplace(heap, (len(word), word))


def _spool(sections: Iterable, spool: BinaryIO) -> tuple[list[SpooledSection], str]:
    digest = RowsDigest()
    spooled: list[SpooledSection] = []
    total = 0
    for section in sections:
        entry = SpooledSection(_unique(section.name, {item.name: 1 for item in spooled}), section)
        for row in section.rows:
            values = _plain_row(section, row)
            total += 1
            if total > PDF_MAX_ROWS:
                raise RenderError(
                    f"This report has more than {PDF_MAX_ROWS:,} rows, the most a PDF report holds "
                    f"(section {entry.title!r} alone reached {entry.count:,}): choose CSV or JSON, "
                    "or a shorter period or narrower filters."
                )
            spool.write(digest.line(entry.name, values))
            entry.note(values)
        entry.summary = _summary(section)
        spooled.append(entry)
    if not spooled:
        raise RenderError("The report has no sections.", "kind")
    return spooled, digest.hexdigest()


def _render_pdf(sections: Iterable, out: BinaryIO, meta: dict) -> dict[str, int]:
    with tempfile.TemporaryFile(prefix="opsdeck-report-rows-") as spool:
        spooled, rows_digest = _spool(sections, spool)
        spool.seek(0)
        from .pdf_layout import PdfReport

        PdfReport(meta, spooled, rows_digest).build(out, spool)
    return {entry.name: entry.count for entry in spooled}
