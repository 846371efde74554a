"""Backup gauges for alerting: how old the last good backup and the last passed verification are.

They are gauges of the last backup rather than a histogram of all of them so that any process can set them from
the database (the readiness check does) without counting a backup twice; "mostrecent" makes /metrics report the
value written last by any process.
"""

from __future__ import annotations

from prometheus_client import Gauge

from .choices import BackupStatus
from .models import Backup
from .selectors import last_successful_backup, last_verified_backup, newest_verified_backup

BACKUP_LAST_SUCCESS = Gauge(
    "backup_last_success_timestamp_seconds",
    "Unix time at which the newest successful backup finished (0: none yet).",
    multiprocess_mode="mostrecent",
)
BACKUP_LAST_VERIFIED = Gauge(
    "backup_last_verified_timestamp_seconds",
    "Unix time of the last verification (a real restore) that passed (0: none yet).",
    multiprocess_mode="mostrecent",
)
# The staleness policy (BACKUP_VERIFIED_MAX_AGE_DAYS) asks when the newest verified backup was *taken*: verifying
# an old backup today does not make the data it holds recent.
BACKUP_NEWEST_VERIFIED_TAKEN = Gauge(
    "backup_newest_verified_taken_timestamp_seconds",
    "Unix time at which the newest backup that passed a verification was taken (0: none yet).",
    multiprocess_mode="mostrecent",
)
BACKUP_SIZE = Gauge(
    "backup_size_bytes",
    "Size of the newest successful backup's stored, encrypted file.",
    multiprocess_mode="mostrecent",
)
BACKUP_DURATION = Gauge(
    "backup_duration_seconds", "How long the newest successful backup took to create.", multiprocess_mode="mostrecent"
)


def _newest_success_set(backup: Backup) -> None:
    BACKUP_LAST_SUCCESS.set((backup.finished_at or backup.started_at).timestamp())
    BACKUP_SIZE.set(backup.size_bytes or 0)
    BACKUP_DURATION.set(backup.duration_seconds or 0)


def backup_metrics_record(backup: Backup) -> None:
    """Update the gauges after ``backup`` was just created or verified; failures change nothing.

    A completed backup is the newest one; a verified one may be older, so it only moves the verification gauge.
    """
    if backup.status == BackupStatus.COMPLETED:
        _newest_success_set(backup)
    elif backup.status == BackupStatus.VERIFIED and backup.verified_at is not None:
        BACKUP_LAST_VERIFIED.set(backup.verified_at.timestamp())
        _newest_verified_taken_set()


def _newest_verified_taken_set() -> None:
    newest = newest_verified_backup()
    BACKUP_NEWEST_VERIFIED_TAKEN.set(newest.started_at.timestamp() if newest else 0)


def backup_metrics_refresh() -> None:
    """Set every gauge from the database, so that a process that made no backup itself reports them too."""
    newest = last_successful_backup()
    if newest is None:
        for gauge in (BACKUP_LAST_SUCCESS, BACKUP_SIZE, BACKUP_DURATION):
            gauge.set(0)
    else:
        _newest_success_set(newest)
    verified = last_verified_backup()
    BACKUP_LAST_VERIFIED.set(verified.verified_at.timestamp() if verified and verified.verified_at else 0)
    _newest_verified_taken_set()
