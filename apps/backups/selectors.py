"""Read queries about backups shared by health, metrics, the admin banner, the portal pages and the scheduled
tasks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import Exists, F, OuterRef, QuerySet
from django.utils import timezone

from apps.jobs.choices import UNFINISHED_STATUSES

from .choices import BackupStatus
from .models import Backup, BackupJob

# Backups whose file is in storage and was written completely. A backup whose verification failed is not one:
# it cannot be trusted to restore.
RESTORABLE = (BackupStatus.COMPLETED, BackupStatus.VERIFIED)
# Backups that have a stored file (a failed verification still leaves it, to be examined).
VERIFIABLE = (*RESTORABLE, BackupStatus.VERIFY_FAILED)
# The health detail names this many failed verifications, then says there are more.
SHOWN_FAILURES = 3


def last_successful_backup() -> Backup | None:
    """The newest backup that completed and has not failed verification or been pruned."""
    return Backup.objects.filter(status__in=RESTORABLE).order_by("-started_at", "-id").first()


def last_verified_backup() -> Backup | None:
    """The backup whose verification passed most recently."""
    return (
        Backup.objects.filter(status=BackupStatus.VERIFIED)
        .order_by(F("verified_at").desc(nulls_last=True), "-id")
        .first()
    )


def newest_verified_backup() -> Backup | None:
    """The newest backup, by when it was taken, whose verification passed (the staleness policy's measure)."""
    return Backup.objects.filter(status=BackupStatus.VERIFIED).order_by("-started_at", "-id").first()


def verification_failures() -> list[Backup]:
    """Failed verifications that still stand, most recent first.

    A failure stands until that backup passes a verification again, or a backup at least as new passes one
    after it: a newer good backup shows backups work again, while an older one passing says nothing about it.
    """
    cleared_later = Backup.objects.filter(
        status=BackupStatus.VERIFIED,
        started_at__gte=OuterRef("started_at"),
        verified_at__gt=OuterRef("verified_at"),
    )
    return list(
        Backup.objects.filter(status=BackupStatus.VERIFY_FAILED)
        .exclude(Exists(cleared_later))
        .only("pk", "error")
        .order_by(F("verified_at").desc(nulls_last=True), "-id")[: SHOWN_FAILURES + 1]
    )


def backups_to_verify_weekly() -> list[Backup]:
    """The newest restorable backup and one random older one: the newest proves last night's backup works, the
    random one that older backups have not rotted in storage since."""
    newest = last_successful_backup()
    if newest is None:
        return []
    older = (
        Backup.objects.filter(status__in=RESTORABLE, started_at__lte=newest.started_at)
        .exclude(pk=newest.pk)
        .order_by("?")
        .first()
    )
    return [newest] if older is None else [newest, older]


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h"


def _finished(backup: Backup) -> datetime:
    return backup.finished_at or backup.started_at


def backups_health(*, now: datetime | None = None) -> tuple[bool, str]:
    """Whether backups are healthy, and a one-line reason: ``False`` when there is no successful backup, the
    newest is older than ``BACKUP_MAX_AGE_HOURS``, or a verification failed and still stands."""
    now = now or timezone.now()
    problems: list[str] = []
    newest = last_successful_backup()
    if newest is None:
        problems.append("no successful backup yet")
    else:
        age = (now - _finished(newest)).total_seconds()
        if age > settings.BACKUP_MAX_AGE_HOURS * 3600:
            problems.append(
                f"last successful backup #{newest.pk} is {_hours(age)} old "
                f"(at most {settings.BACKUP_MAX_AGE_HOURS} h allowed)"
            )
    failures = verification_failures()
    for failed in failures[:SHOWN_FAILURES]:
        reason = failed.error.strip().splitlines()[0] if failed.error.strip() else "no reason recorded"
        problems.append(f"verification of backup #{failed.pk} failed: {reason}")
    if len(failures) > SHOWN_FAILURES:
        problems.append("more verifications failed")
    if problems:
        return False, "; ".join(problems)
    age = (now - _finished(newest)).total_seconds()
    verified = last_verified_backup()
    checked = f"last verification passed (backup #{verified.pk})" if verified is not None else "not verified yet"
    return True, f"last successful backup #{newest.pk} {_hours(age)} ago; {checked}"


@dataclass(frozen=True)
class BackupsHealth:
    """The backups' state as the portal's backups page summarises it."""

    ok: bool
    detail: str
    last_successful: Backup | None
    last_verified: Backup | None
    max_age_hours: int


def backups_health_summary(*, now: datetime | None = None) -> BackupsHealth:
    """``backups_health`` with the backups it speaks about, so that a page can show their ages and link them."""
    ok, detail = backups_health(now=now)
    return BackupsHealth(
        ok=ok,
        detail=detail,
        last_successful=last_successful_backup(),
        last_verified=last_verified_backup(),
        max_age_hours=settings.BACKUP_MAX_AGE_HOURS,
    )


def backups_listed() -> QuerySet[Backup]:
    """Backups newest first, as lists show them: without the per-table row counts and reports."""
    return (
        Backup.objects.select_related("triggered_by")
        .defer("row_counts", "migrations", "verification")
        .order_by("-started_at", "-id")
    )


def backup_jobs_unfinished() -> QuerySet[BackupJob]:
    """Backup jobs queued or running, newest first."""
    return BackupJob.objects.filter(status__in=UNFINISHED_STATUSES).select_related("owner").order_by("-id")
