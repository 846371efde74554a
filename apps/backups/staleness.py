"""backup.stale: no backup taken within the policy window has passed a verification."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.core.events import notify

from .selectors import newest_verified_backup

STALE_ACTION = "notification.backup.stale"
# While backups stay stale, people are reminded once a day, not at every hourly check.
REMINDER_INTERVAL = timedelta(days=1)


def backups_staleness_check(*, now: datetime | None = None) -> str:
    """Announce ``backup.stale`` when no backup taken within BACKUP_VERIFIED_MAX_AGE_DAYS is verified (hourly beat
    task); at most once a day while it lasts. Returns what was found."""
    now = now or timezone.now()
    days = settings.BACKUP_VERIFIED_MAX_AGE_DAYS
    verified = newest_verified_backup()
    if verified is not None and verified.started_at >= now - timedelta(days=days):
        return f"Backup #{verified.pk}, taken within the last {days} days, is verified."
    if AuditEvent.objects.filter(action=STALE_ACTION, timestamp__gte=now - REMINDER_INTERVAL).exists():
        return "No recent verified backup; already announced within the last day."
    newest = f"the newest verified one is backup #{verified.pk}" if verified else "no backup was ever verified"
    summary = f"No backup taken within the last {days} days has been verified; {newest}."
    notify(
        "backup.stale",
        data={
            "window_days": days,
            "newest_verified_backup_id": verified.pk if verified else None,
            "newest_verified_backup_taken_at": verified.started_at if verified else None,
            "path": reverse("backups_page:index"),
        },
        summary=summary,
    )
    return summary
