"""Retention: which backups to keep (grandfather-father-son), and pruning the rest.

Periods count the newest days, ISO weeks and months that *have* a backup, not calendar time back from now:
when backups stop being made, pruning never eats into the last good ones as the days pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.audit.services import event_record
from apps.core import formatting

from .choices import BackupStatus
from .models import Backup
from .selectors import RESTORABLE
from .services import backup_storage

NEWEST_VERIFIED = "newest verified backup"

# (rule, period of a local start time, label of that period)
PERIODS: tuple[tuple[str, Callable[[datetime], tuple], Callable[[tuple], str]], ...] = (
    ("daily", lambda moment: (moment.date(),), lambda key: f"{key[0]:%Y-%m-%d}"),
    ("weekly", lambda moment: tuple(moment.isocalendar())[:2], lambda key: f"{key[0]}-W{key[1]:02d}"),
    ("monthly", lambda moment: (moment.year, moment.month), lambda key: f"{key[0]}-{key[1]:02d}"),
)


def retention_plan(
    backups: Iterable[Backup], *, now: datetime, keep_daily: int, keep_weekly: int, keep_monthly: int
) -> list[tuple[Backup, bool, str]]:
    """For each backup, newest first: whether to keep it and why.

    ``backups`` are completed or verified ones. Kept: the newest backup of each of the newest ``keep_daily``
    days, ``keep_weekly`` ISO weeks and ``keep_monthly`` months that have one (in the current time zone), and
    always the newest verified backup. ``now`` only dates the reasons (a backup's age).
    """
    ordered = sorted(backups, key=lambda backup: (backup.started_at, backup.pk), reverse=True)
    reasons: dict[int, list[str]] = {backup.pk: [] for backup in ordered}
    limits = {"daily": keep_daily, "weekly": keep_weekly, "monthly": keep_monthly}
    for rule, period_of, label in PERIODS:
        seen: set[tuple] = set()
        for backup in ordered:
            period = period_of(timezone.localtime(backup.started_at))
            if period in seen:
                continue
            seen.add(period)
            if len(seen) > limits[rule]:
                break
            reasons[backup.pk].append(f"{rule} {len(seen)}/{limits[rule]} (newest of {label(period)})")
    newest_verified = next((backup for backup in ordered if backup.status == BackupStatus.VERIFIED), None)
    if newest_verified is not None:
        reasons[newest_verified.pk].append(NEWEST_VERIFIED)
    prune_reason = (
        f"not the newest of the newest {formatting.count(keep_daily, 'day')}, "
        f"{formatting.count(keep_weekly, 'ISO week')} or {formatting.count(keep_monthly, 'month')} "
        "with backups, and not the newest verified backup"
    )
    return [
        (backup, bool(reasons[backup.pk]), "; ".join(reasons[backup.pk]) or f"{prune_reason}; {_age(backup, now)}")
        for backup in ordered
    ]


def _age(backup: Backup, now: datetime) -> str:
    days = (now - backup.started_at).total_seconds() / 86400
    return f"{days:.1f} days old"


def _line(backup: Backup, action: str, why: str) -> str:
    return f"{action:<12} #{backup.pk} of {timezone.localtime(backup.started_at):%Y-%m-%d %H:%M %Z}: {why}"


def backups_prune(*, dry_run: bool = False) -> str:
    """Apply the retention policy (BACKUP_KEEP_DAILY / _WEEKLY / _MONTHLY) to completed and verified backups.

    A pruned backup's file is deleted from storage; its row stays, status ``pruned``, as evidence, and the
    audit trail records why it went. ``dry_run`` changes nothing and lists every backup with what would
    happen to it and why. Returns the report, one line per backup and a summary.
    """
    plan = retention_plan(
        Backup.objects.filter(status__in=RESTORABLE),
        now=timezone.now(),
        keep_daily=settings.BACKUP_KEEP_DAILY,
        keep_weekly=settings.BACKUP_KEEP_WEEKLY,
        keep_monthly=settings.BACKUP_KEEP_MONTHLY,
    )
    doomed = [(backup, why) for backup, keep, why in plan if not keep]
    if dry_run:
        lines = [_line(backup, "keep" if keep else "would prune", why) for backup, keep, why in plan]
        lines.append(
            f"Dry run: would prune {len(doomed)} of {formatting.count(len(plan), 'backup')}; nothing was changed."
        )
        return "\n".join(lines)
    lines = [_line(backup, "pruned", why) for backup, why in doomed if _prune_one(backup, why=why)]
    lines.append(f"Pruned {len(lines)} of {formatting.count(len(plan), 'backup')}; kept {len(plan) - len(doomed)}.")
    return "\n".join(lines)


def _prune_one(backup: Backup, *, why: str) -> bool:
    # The file goes last inside the transaction: if storage refuses, the row still says the backup is there.
    # Re-reading under a lock skips a backup whose status changed since the plan (a verification just failed).
    with transaction.atomic():
        locked = Backup.objects.select_for_update().filter(pk=backup.pk, status__in=RESTORABLE).first()
        if locked is None:
            return False
        locked.status = BackupStatus.PRUNED
        locked.save(update_fields=["status"])
        event_record(action="backup.pruned", obj=locked, changes={"reason": why, "path": locked.path})
        if locked.path:
            backup_storage().delete(locked.path)
    return True
