"""Business logic of the portal core: maintenance runs, schedules, live events."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from . import formatting
from .choices import MaintenanceStatus
from .models import MaintenanceRun

logger = logging.getLogger(__name__)


@contextmanager
def maintenance_run_record(*, task_name: str, celery_task_id: str = "", worker: str = "") -> Iterator[MaintenanceRun]:
    """Record a maintenance run around the body; the body sets ``run.message``.

    The run is saved as running before the body starts, so a run that never
    finishes (worker killed) stays visible as such.
    """
    run = MaintenanceRun.objects.create(task_name=task_name, celery_task_id=celery_task_id or "", worker=worker or "")
    try:
        yield run
    except Exception as exc:
        run.status = MaintenanceStatus.FAILED
        run.message = f"{type(exc).__name__}: {exc}"
        raise
    else:
        run.status = MaintenanceStatus.SUCCEEDED
    finally:
        run.finished_at = timezone.now()
        run.save(update_fields=["status", "message", "finished_at"])
        logger.info("maintenance run %s %s: %s", task_name, run.status, run.message)


def maintenance_runs_prune(*, now: datetime | None = None) -> str:
    """Delete the records of maintenance runs older than MAINTENANCE_RUN_RETENTION_DAYS (nightly beat task): the
    per-minute sweeps alone leave thousands a day."""
    days = settings.MAINTENANCE_RUN_RETENTION_DAYS
    deleted, _ = MaintenanceRun.objects.filter(started_at__lt=(now or timezone.now()) - timedelta(days=days)).delete()
    return f"Deleted {formatting.count(deleted, 'maintenance run')} older than {days} days."


@dataclass(frozen=True)
class ScheduledTask:
    """One entry of the beat schedule that the code defines."""

    name: str
    task: str
    crontab: str  # "minute hour day_of_month month_of_year day_of_week", UTC
    queue: str
    description: str


def periodic_tasks_sync(*, schedule: Iterable[ScheduledTask]) -> dict[str, int]:
    """Create or update the beat entries defined in code; idempotent.

    Existing entries keep their ``enabled`` flag, so an administrator who paused
    a task in the admin does not see it switched back on by a deploy.
    """
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    with transaction.atomic():
        for entry in schedule:
            minute, hour, day_of_month, month_of_year, day_of_week = entry.crontab.split()
            crontab, _ = CrontabSchedule.objects.get_or_create(
                minute=minute,
                hour=hour,
                day_of_month=day_of_month,
                month_of_year=month_of_year,
                day_of_week=day_of_week,
                timezone="UTC",
            )
            wanted = {"task": entry.task, "crontab": crontab, "queue": entry.queue, "description": entry.description}
            task = PeriodicTask.objects.filter(name=entry.name).first()
            if task is None:
                PeriodicTask.objects.create(name=entry.name, **wanted)
                counts["created"] += 1
            elif any(getattr(task, field) != value for field, value in wanted.items()):
                for field, value in wanted.items():
                    setattr(task, field, value)
                task.save()
                counts["updated"] += 1
            else:
                counts["unchanged"] += 1
    return counts


def periodic_task_ran(*, name: str, at: datetime) -> None:
    """Record that the beat entry ``name`` ran at ``at``, as its last run.

    An UPDATE rather than a save: run bookkeeping is neither a schedule change to audit nor a reason for beat
    to reload its schedule (every save of an entry signals one).
    """
    PeriodicTask.objects.filter(name=name).update(last_run_at=at)


def user_group_name(user_id: int) -> str:
    """The channel-layer group that carries live events for one user."""
    return f"user.{user_id}"


def live_event_publish(*, group: str, event: str, payload: dict) -> None:
    """Send a live event to every websocket subscribed to ``group``.

    Called after the change is committed; a failure to publish is logged and
    never undoes the change (clients re-sync from the API on reconnect).
    """
    try:
        async_to_sync(get_channel_layer().group_send)(group, {"type": "live.event", "event": event, "payload": payload})
    except Exception:
        logger.exception("could not publish live event %s to %s", event, group)


def periodic_tasks_set_enabled(*, tasks, enabled: bool | None) -> int:
    """Enable, disable or (``enabled=None``) toggle beat entries; returns how many.

    Each entry is saved on its own so that every change is audited and beat
    notices it; a bulk UPDATE would bypass both.
    """
    count = 0
    with transaction.atomic():
        for task in tasks.select_for_update(of=("self",)):
            task.enabled = (not task.enabled) if enabled is None else enabled
            task.save()
            count += 1
    return count
