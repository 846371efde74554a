"""Beat entries in words: their schedule as a sentence and when they run next.

cron-descriptor (already what django-celery-beat uses for its own crontab translation) turns cron fields into
English; this module only adds the time zone and "every day", and works out the next run the way beat does.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from celery.signals import task_prerun
from cron_descriptor import (
    ExpressionDescriptor,
    FormatException,
    MissingFieldException,
    Options,
    WrongArgumentException,
)
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from .services import periodic_task_ran

_CRON_ERRORS = (FormatException, MissingFieldException, WrongArgumentException)
_AT_TIME = re.compile(r"^At (\d\d:\d\d)(.*)$")
_CLOCK = re.compile(r"\d\d:\d\d")


def crontab_text(crontab: CrontabSchedule) -> str:
    """ "17 3 * * *" in UTC → "Every day at 03:17 UTC"; "0 4 * * 0" → "At 04:00 UTC, only on Sunday"."""
    fields = (crontab.minute, crontab.hour, crontab.day_of_month, crontab.month_of_year, crontab.day_of_week)
    expression = " ".join(str(field) for field in fields)
    options = Options()
    options.use_24hour_time_format = True
    try:
        description = ExpressionDescriptor(expression, options).get_description()
    except _CRON_ERRORS:
        return f"Cron {expression} ({crontab.timezone})"
    zone = crontab.timezone
    if at_time := _AT_TIME.match(description):
        clock, rest = at_time.groups()
        if not rest:
            return f"Every day at {clock} {zone}"
        if rest.startswith(","):
            return f"At {clock} {zone}{rest}"
    # "At 04:00 and 16:00", "Every 5 minutes, between 04:00 and 04:59": clock times, so the zone goes at the end;
    # "Every 5 minutes" has none to place in a zone.
    return f"{description} ({zone})" if _CLOCK.search(description) else description


def schedule_text(task: PeriodicTask) -> str:
    """The entry's schedule as a sentence, whichever kind of schedule it has."""
    if task.crontab_id:
        return crontab_text(task.crontab)
    if task.clocked_id:
        return f"Once, at {task.clocked.clocked_time:%Y-%m-%d %H:%M} UTC"
    schedule = task.interval or task.solar
    text = str(schedule) if schedule else "No schedule"
    return text[:1].upper() + text[1:]


def next_run(task: PeriodicTask) -> datetime | None:
    """When beat sends the entry next; None when it will not (no schedule yet, paused, a one-off that already ran).

    Beat counts from the last run, or from the entry's last change before its first run; a run that is already
    due goes out at beat's next tick, so it is shown as now.
    """
    if task.scheduler is None or not task.enabled or (task.one_off and task.last_run_at):
        return None
    if task.clocked_id:
        return task.clocked.clocked_time
    now = timezone.now()
    counted_from = task.last_run_at or task.date_changed or now
    # The schedule measures what remains from its own clock reading, taken a moment after ``now``: rounding to the
    # second keeps a run due at 03:17:00 from reading as 03:16:59.
    remaining = task.schedule.remaining_estimate(counted_from)
    upcoming = max((now + remaining + timedelta(milliseconds=500)).replace(microsecond=0), now)
    return max(upcoming, task.start_time) if task.start_time else upcoming


@task_prerun.connect
def _note_the_run_of_a_beat_entry(task=None, **_kwargs) -> None:
    # Beat and the admin's "Run selected tasks" name the entry they send in this header. Beat itself writes
    # last_run_at only when it syncs (every few minutes, and never for runs the admin starts), so the entry's
    # "Last run" is written here, by the run itself.
    if entry := getattr(task.request, "periodic_task_name", None):
        periodic_task_ran(name=entry, at=timezone.now())
