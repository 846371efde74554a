"""The monthly partitions of the audit table on PostgreSQL (migration 0013): list them, create the coming months.

Each partition holds one UTC month (``audit_auditevent_pYYYYMM``); a DEFAULT partition takes any event whose month
has none. ``audit_partition_create(month)`` (SQL, owned by the table owner) creates a month's partition with the
guards and the privileges of the parent, so the application role may call it; it refuses a month whose events
already sit in the default partition.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction
from django.utils import timezone

from .models import AuditEvent

MONTHS_AHEAD = 2
DEFAULT_PARTITION = f"{AuditEvent._meta.db_table}_default"
_MONTHLY_NAME = re.compile(rf"^{AuditEvent._meta.db_table}_p(\d{{4}})(\d{{2}})$")
# audit_partition_create's SQLSTATE when the default partition holds events of the month.
OBJECT_NOT_IN_PREREQUISITE_STATE = "55000"


class PartitionError(Exception):
    """A partition could not be created; the message says which and why."""


@dataclass(frozen=True)
class Partition:
    name: str
    month: date | None  # None: the default partition
    events: int | None = None  # counted only when asked

    @property
    def start(self) -> datetime | None:
        return datetime(self.month.year, self.month.month, 1, tzinfo=UTC) if self.month else None

    @property
    def end(self) -> datetime | None:
        return datetime(*_next_month(self.month).timetuple()[:3], tzinfo=UTC) if self.month else None


def _next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def partitioned(using: str = DEFAULT_DB_ALIAS) -> bool:
    """Whether the audit table is partitioned here (PostgreSQL after migration 0013; never SQLite)."""
    if connections[using].vendor != "postgresql":
        return False
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT relkind = 'p' FROM pg_class WHERE oid = to_regclass(%s)", [AuditEvent._meta.db_table])
        row = cursor.fetchone()
    return bool(row and row[0])


def partitions_list(*, count: bool = False, using: str = DEFAULT_DB_ALIAS) -> list[Partition]:
    """The audit table's partitions, oldest month first and the default one last; with ``count``, their events."""
    if not partitioned(using):
        return []
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass",
            [AuditEvent._meta.db_table],
        )
        names = [name for (name,) in cursor.fetchall()]
        counts = {}
        if count:
            cursor.execute(f"SELECT tableoid::regclass::text, count(*) FROM {AuditEvent._meta.db_table} GROUP BY 1")  # noqa: S608
            counts = dict(cursor.fetchall())
    partitions = []
    for name in names:
        matched = _MONTHLY_NAME.match(name)
        month = date(int(matched[1]), int(matched[2]), 1) if matched else None
        partitions.append(Partition(name=name, month=month, events=counts.get(name, 0) if count else None))
    return sorted(partitions, key=lambda p: (p.month is None, p.month or date.min, p.name))


def partitions_ensure(*, months_ahead: int = MONTHS_AHEAD, using: str = DEFAULT_DB_ALIAS) -> str:
    """Create the partitions of this month and the next ``months_ahead`` months where missing (daily beat task).

    Idempotent. Raises PartitionError, after creating the others, for a month whose events already sit in the
    default partition (they stay there: archiving removes them by deleting rows).
    """
    if not partitioned(using):
        return "The audit table is not partitioned here (SQLite or before migration 0013); nothing to do."
    month = timezone.now().astimezone(UTC).date().replace(day=1)
    created, existing, problems = [], [], []
    for _ in range(months_ahead + 1):
        try:
            with transaction.atomic(using=using), connections[using].cursor() as cursor:
                cursor.execute("SELECT audit_partition_create(%s)", [month])
                (created if cursor.fetchone()[0] else existing).append(f"{month:%Y-%m}")
        except DatabaseError as exc:
            if getattr(exc.__cause__, "sqlstate", None) != OBJECT_NOT_IN_PREREQUISITE_STATE:
                raise
            problems.append(str(exc.__cause__.diag.message_primary))
        month = _next_month(month)
    summary = (
        f"Audit partitions created: {', '.join(created) or 'none'}; already there: {', '.join(existing) or 'none'}."
    )
    if problems:
        raise PartitionError(f"{summary} Not created: {'; '.join(problems)}.")
    return summary
