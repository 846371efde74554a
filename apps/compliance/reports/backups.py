"""Backup evidence: the backups of the period, their verification by restore, and whether the policy held."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from itertools import pairwise

from apps.backups.choices import BackupStatus
from apps.backups.models import Backup

from .base import ReportParams, Section, duration_text, iso, yes_no

# The policy: a backup proven restorable (verified by a real restore) at least this often.
POLICY_INTERVAL = timedelta(days=7)
# The weekly verification runs from beat at the same time each week, and picks the newest nightly backup:
# consecutive verified backups are "7 days" apart give or take minutes. This much lateness still holds.
POLICY_ALLOWANCE = timedelta(hours=6)

BACKUP_COLUMNS = [
    "id", "started", "finished", "status", "trigger", "size_bytes", "verified_at", "verification", "message",
    "findings",
]  # fmt: skip


def _verified(backup: Backup) -> bool:
    return backup.verified_at is not None and bool((backup.verification or {}).get("ok"))


def _verification_text(backup: Backup) -> str:
    if backup.verified_at is None:
        return "not verified"
    return "passed" if _verified(backup) else f"failed ({(backup.verification or {}).get('reason') or 'unknown'})"


def _backup_finding(backup: Backup) -> str:
    if backup.status == BackupStatus.FAILED:
        return "backup failed"
    if backup.verified_at is not None and not _verified(backup):
        return "verification failed"
    return ""


def _backup_row(backup: Backup) -> list:
    message = (backup.verification or {}).get("message", "") if backup.verified_at else ""
    return [
        backup.pk, iso(backup.started_at), iso(backup.finished_at), backup.status, backup.trigger,
        backup.size_bytes if backup.size_bytes is not None else "", iso(backup.verified_at), _verification_text(backup),
        backup.error or message, _backup_finding(backup),
    ]  # fmt: skip


def policy_gaps(verified_times: list[datetime], *, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The stretches of the period between verified backups: from the period's start (or the last verified backup
    before it) to the first, between each two, and from the last to the period's end."""
    points = sorted(verified_times)
    before = [point for point in points if point < start]
    inside = [point for point in points if start <= point < end]
    bounds = [before[-1] if before else start, *inside, end]
    return list(pairwise(bounds))


def backup_evidence(params: ReportParams) -> Iterator[Section]:
    """Every backup started in the period with its verification; the gaps between verified backups."""
    start, end = params.period_start, params.period_end
    backups = list(
        Backup.objects.filter(started_at__gte=start, started_at__lt=end)
        .defer("migrations", "row_counts")
        .order_by("started_at", "id")
    )
    previous_verified = (
        Backup.objects.filter(started_at__lt=start, verified_at__isnull=False, verification__ok=True)
        .order_by("-started_at")
        .values_list("started_at", flat=True)
        .first()
    )
    verified_times = [backup.started_at for backup in backups if _verified(backup)]
    gaps = policy_gaps(verified_times + ([previous_verified] if previous_verified else []), start=start, end=end)
    longest = max(gaps, key=lambda gap: gap[1] - gap[0])
    limit = POLICY_INTERVAL + POLICY_ALLOWANCE
    held = all(gap_end - gap_start <= limit for gap_start, gap_end in gaps)
    yield Section(
        name="backups",
        title="Backups in the period",
        columns=BACKUP_COLUMNS,
        rows=[_backup_row(backup) for backup in backups],
        findings_column="findings",
        summary={
            "policy": f"a backup verified by a restore at least every {POLICY_INTERVAL.days} days",
            "policy held": yes_no(held),
            "longest gap": duration_text(longest[1] - longest[0]),
            "longest gap from": iso(longest[0]),
            "longest gap to": iso(longest[1]),
            "backups": len(backups),
            "verified": len(verified_times),
            "failed": sum(1 for backup in backups if backup.status == BackupStatus.FAILED),
            "verification failures": sum(1 for b in backups if b.verified_at is not None and not _verified(b)),
        },
    )
    yield Section(
        name="gaps",
        title="Time between verified backups",
        columns=["from", "to", "length", "hours", "findings"],
        rows=[
            [
                iso(gap_start),
                iso(gap_end),
                duration_text(gap_end - gap_start),
                round((gap_end - gap_start).total_seconds() / 3600, 1),
                f"no verified backup for more than {POLICY_INTERVAL.days} days" if gap_end - gap_start > limit else "",
            ]
            for gap_start, gap_end in gaps
        ],
        findings_column="findings",
        summary={"gaps over the policy": sum(1 for gap_start, gap_end in gaps if gap_end - gap_start > limit)},
    )
