"""What a report builder takes and gives: the parameters of one report, and its sections of rows.

Builders only read. Values in rows are text, numbers or "yes"/"no", and times are ISO 8601 text in UTC, so the
same row reads the same in CSV, JSON and PDF.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

# Rows read from a server-side cursor this many at a time: constant memory however long the period.
CHUNK_SIZE = 2000


@dataclass
class ReportParams:
    kind: str
    period_start: datetime
    period_end: datetime
    filters: dict = field(default_factory=dict)


@dataclass
class Section:
    """One table of a report. ``rows`` may be a generator reading a cursor: consume it once.

    ``findings_column`` names a column whose non-empty values are findings; ``summary`` holds the section's key
    facts for the cover page.
    """

    name: str
    title: str
    columns: list[str]
    rows: Iterable[Sequence]
    findings_column: str | None = None
    summary: dict = field(default_factory=dict)
    # Optional: the same rows already encoded as CSV (no header), e.g. written by PostgreSQL's COPY,
    # with their number; the CSV renderer then uses them instead of formatting ``rows`` itself.
    csv_rows: Iterable[bytes] | None = None
    row_count: int | None = None


ReportBuilder = Callable[[ReportParams], Iterator[Section]]


def iso(value: datetime | None) -> str:
    """A time as ISO 8601 in UTC to the second; empty when there is none."""
    return "" if value is None else value.astimezone(UTC).isoformat(timespec="seconds")


def yes_no(value) -> str:
    return "yes" if value else "no"


def duration_text(value: timedelta) -> str:
    """A gap as days and hours, e.g. "8 days 3 hours"."""
    hours = int(value.total_seconds() // 3600)
    days, hours = divmod(hours, 24)
    parts = [f"{days} day{'s' if days != 1 else ''}"] if days else []
    parts.append(f"{hours} hour{'s' if hours != 1 else ''}")
    return " ".join(parts)


def joined(values: Iterable[str], separator: str = ", ") -> str:
    return separator.join(values)
