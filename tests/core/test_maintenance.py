"""Scheduled maintenance: the beat schedule from code, and runs recorded by a real worker."""

import pytest
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from apps.accounts.tasks import session_clear_expired
from apps.core.choices import MaintenanceStatus
from apps.core.maintenance import maintenance_task
from apps.core.models import MaintenanceRun
from apps.core.tasks import maintenance_runs_prune_task
from project.schedule import SCHEDULE


def _expire_one_session_of_two():
    now = timezone.now()
    Session.objects.create(session_key="a" * 32, session_data="", expire_date=now - timezone.timedelta(days=1))
    Session.objects.create(session_key="b" * 32, session_data="", expire_date=now + timezone.timedelta(days=1))


def test_session_cleanup_runs_on_a_worker_and_is_recorded(celery_worker):
    _expire_one_session_of_two()
    result = session_clear_expired.delay()
    assert result.get(timeout=30) == "Deleted 1 expired session."
    assert list(Session.objects.values_list("session_key", flat=True)) == ["b" * 32]
    run = MaintenanceRun.objects.get()
    assert run.task_name == "maintenance.session_clear_expired"
    assert run.status == MaintenanceStatus.SUCCEEDED
    assert run.message == "Deleted 1 expired session."
    assert run.celery_task_id == result.id
    assert run.worker
    assert run.duration_seconds >= 0


def _broken_service() -> str:
    raise OSError("disk is full")


broken_task = maintenance_task("tests_broken", _broken_service)


@pytest.mark.django_db
def test_failed_maintenance_run_is_recorded_with_the_reason():
    with pytest.raises(OSError, match="disk is full"):
        broken_task.apply(throw=True)
    run = MaintenanceRun.objects.get()
    assert run.status == MaintenanceStatus.FAILED
    assert run.message == "OSError: disk is full"
    assert run.finished_at is not None


@pytest.mark.django_db
def test_setup_periodic_tasks_is_idempotent_and_keeps_paused_tasks_paused(capsys):
    call_command("setup_periodic_tasks")
    assert f"{len(SCHEDULE)} created" in capsys.readouterr().out
    task = PeriodicTask.objects.get(name=SCHEDULE[0].name)
    assert task.task == "maintenance.session_clear_expired"
    assert task.queue == "maintenance"
    assert str(task.crontab.minute) == "17"
    assert str(task.crontab.hour) == "3"
    task.enabled = False
    task.queue = "default"
    task.save()

    call_command("setup_periodic_tasks")
    assert f"1 updated, {len(SCHEDULE) - 1} unchanged" in capsys.readouterr().out
    call_command("setup_periodic_tasks")
    assert f"{len(SCHEDULE)} unchanged" in capsys.readouterr().out
    task.refresh_from_db()
    assert task.queue == "maintenance"
    assert task.enabled is False
    assert PeriodicTask.objects.filter(name=SCHEDULE[0].name).count() == 1


def test_every_scheduled_task_is_registered_and_routed_to_its_queue():
    from project.celery import app

    app.loader.import_default_modules()
    for entry in SCHEDULE:
        assert entry.task in app.tasks, entry.task
        assert app.amqp.router.route({}, entry.task)["queue"].name == entry.queue


@pytest.mark.django_db
def test_records_of_runs_older_than_the_retention_are_pruned_and_the_pruning_is_recorded(settings):
    settings.MAINTENANCE_RUN_RETENTION_DAYS = 30
    old, recent = MaintenanceRun.objects.create(task_name="old"), MaintenanceRun.objects.create(task_name="recent")
    MaintenanceRun.objects.filter(pk=old.pk).update(started_at=timezone.now() - timezone.timedelta(days=31))

    message = maintenance_runs_prune_task.apply(throw=True).get()

    assert message == "Deleted 1 maintenance run older than 30 days."
    assert set(MaintenanceRun.objects.values_list("task_name", flat=True)) == {
        "recent",
        "maintenance.maintenance_runs_prune",
    }
    assert MaintenanceRun.objects.filter(pk=recent.pk).exists()
