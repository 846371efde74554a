"""Periodic tasks in words: the schedule as a sentence, the next run, and "Last run" written by the run itself."""

import time
from datetime import UTC, datetime
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from apps.core.choices import MaintenanceStatus
from apps.core.models import MaintenanceRun
from apps.core.schedules import crontab_text, next_run, schedule_text

CHANGELIST_URL = "/admin/django_celery_beat/periodictask/"


def _crontab(expression: str) -> CrontabSchedule:
    minute, hour, day_of_month, month_of_year, day_of_week = expression.split()
    return CrontabSchedule(
        minute=minute,
        hour=hour,
        day_of_month=day_of_month,
        month_of_year=month_of_year,
        day_of_week=day_of_week,
        timezone="UTC",
    )


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("0 4 * * *", "Every day at 04:00 UTC"),
        ("17 3 * * *", "Every day at 03:17 UTC"),
        ("0 4 * * 0", "At 04:00 UTC, only on Sunday"),
        ("0 1 1 * *", "At 01:00 UTC, on day 1 of the month"),
        ("*/5 * * * *", "Every 5 minutes"),
        ("*/5 4 * * *", "Every 5 minutes, between 04:00 and 04:59 (UTC)"),
        ("0 4,16 * * *", "At 04:00 and 16:00 (UTC)"),
        ("5 * * * *", "At 5 minutes past the hour"),
    ],
)
def test_a_crontab_reads_as_a_sentence_with_its_time_zone(expression, words):
    assert crontab_text(_crontab(expression)) == words


@pytest.mark.django_db
def test_an_interval_reads_as_a_sentence():
    interval = IntervalSchedule.objects.create(every=10, period=IntervalSchedule.MINUTES)
    task = PeriodicTask.objects.create(name="often", task="maintenance.session_clear_expired", interval=interval)

    assert schedule_text(task) == "Every 10 minutes"


@pytest.mark.django_db
def test_next_run_counts_from_the_last_run_and_a_paused_entry_has_none():
    crontab = _crontab("0 4 * * *")
    crontab.save()
    task = PeriodicTask.objects.create(name="nightly", task="maintenance.session_clear_expired", crontab=crontab)
    task.last_run_at = datetime(2026, 3, 1, 4, 0, tzinfo=UTC)

    with time_machine.travel(datetime(2026, 3, 1, 10, 30, tzinfo=UTC), tick=False):
        assert next_run(task) == datetime(2026, 3, 2, 4, 0, tzinfo=UTC)
        task.enabled = False
        assert next_run(task) is None


@pytest.mark.django_db
def test_changelist_shows_schedules_in_words_the_next_run_and_never_run(admin_client):
    with time_machine.travel(datetime(2026, 3, 1, 10, 30, tzinfo=UTC)):
        call_command("setup_periodic_tasks", stdout=StringIO())  # never run: counted from when it was set up
        page = admin_client.get(CHANGELIST_URL).content.decode()
        task = PeriodicTask.objects.get(name="Clear expired sessions")
        change_page = admin_client.get(f"{CHANGELIST_URL}{task.pk}/change/").content.decode()

    assert "Every day at 03:17 UTC" in page  # Clear expired sessions
    assert "At 04:00 UTC, only on Sunday" in page  # Verify backups by restoring them
    assert "2 Mar 2026, 03:17 UTC" in page  # its next run
    assert "(m/h/dM/MY/d)" not in page
    assert "never" in page
    assert "Clear expired sessions: Every day at 03:17 UTC" in change_page  # its title and breadcrumb
    assert f'<option value="{task.crontab_id}" selected>Every day at 03:17 UTC</option>' in change_page
    assert "(m/h/dM/MY/d)" not in change_page


@pytest.mark.django_db
def test_the_add_page_has_no_schedule_and_no_next_run_yet(admin_client):
    response = admin_client.get(f"{CHANGELIST_URL}add/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "No schedule" in page
    assert "Next run" in page


def test_running_an_entry_from_the_admin_fills_its_last_run(celery_worker, client, roles, admin_user):
    from tests.mfa import otp_force_login

    otp_force_login(client, admin_user)
    call_command("setup_periodic_tasks", stdout=StringIO())
    task = PeriodicTask.objects.get(name="Clear expired sessions")
    assert task.last_run_at is None
    before = datetime.now(UTC)

    response = client.post(CHANGELIST_URL, {"action": "run_tasks", "_selected_action": [task.pk]})

    assert response.status_code == 302
    deadline = time.monotonic() + 30
    while not MaintenanceRun.objects.filter(status=MaintenanceStatus.SUCCEEDED).exists():
        assert time.monotonic() < deadline, "the task did not run within 30 s"
        time.sleep(0.1)
    task.refresh_from_db()
    assert task.last_run_at >= before
    assert PeriodicTask.objects.exclude(pk=task.pk).filter(last_run_at__isnull=False).count() == 0
    assert f"{task.last_run_at:%-d %b %Y, %H:%M} UTC" in client.get(CHANGELIST_URL).content.decode()
