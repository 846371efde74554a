"""While maintenance mode is on, a real worker takes no new job (queued ones wait, held, nothing lost) and runs the
scheduled housekeeping (the maintenance queue, backups included); when it ends, by hand or by its end time passing,
every held job runs."""

from datetime import timedelta
from functools import partial

import pytest
from django.utils import timezone

from apps.backups.choices import BackupStatus
from apps.backups.models import Backup, BackupJob
from apps.backups.tasks import backup_create_nightly
from apps.core.choices import MaintenanceStatus
from apps.core.models import MaintenanceRun
from apps.jobs.choices import JobStatus
from apps.jobs.kinds import job_kind
from apps.jobs.lifecycle import jobs_claim, jobs_release_held
from apps.quantum.models import QuantumJob
from apps.quantum.services import JobSpec, job_submit
from apps.readonly.models import HeldJob
from apps.readonly.services import maintenance_mode_disable, maintenance_mode_enable
from tests.helpers import job_wait, wait_for
from tests.quantum_circuits import ghz_qasm2

pytestmark = pytest.mark.timeout(180)

# This file's deadline for what it waits for.
_wait_for = partial(wait_for, timeout=30)


def _submit(owner, count: int) -> list[QuantumJob]:
    return [job_submit(owner=owner, spec=JobSpec(source=ghz_qasm2(3), shots=20, name=f"m{i}")) for i in range(count)]


def test_a_worker_holds_new_jobs_runs_housekeeping_and_runs_every_held_job_after(
    celery_worker, operator_user, backup_dir
):
    maintenance_mode_enable(message="Upgrade.", via="test")
    jobs = _submit(operator_user, 4)

    # The worker takes their messages and holds the jobs: queued, never started.
    _wait_for(lambda: HeldJob.objects.filter(kind="quantum").count() == 4, "holding the 4 jobs")
    # Scheduled housekeeping goes on meanwhile: tonight's backup runs as a job on the maintenance queue.
    backup_create_nightly.apply_async()
    run = _wait_for(
        lambda: MaintenanceRun.objects.filter(
            task_name="maintenance.backup_create_nightly", status=MaintenanceStatus.SUCCEEDED
        ).first(),
        "the nightly backup",
        timeout=60,
    )
    assert Backup.objects.get().status == BackupStatus.COMPLETED
    assert BackupJob.objects.get().status == JobStatus.COMPLETED
    assert run.message.startswith("Backup #")
    for job in jobs:
        job.refresh_from_db()
        assert (job.status, job.started_at, job.attempts) == (JobStatus.QUEUED, None, 0)

    maintenance_mode_disable(via="test")

    for job in jobs:
        job_wait(job, [JobStatus.COMPLETED], timeout=60)
        assert job.attempts == 1
    assert not HeldJob.objects.exists()


def test_jobs_held_run_once_the_end_time_passes_with_nobody_turning_it_off(celery_worker, operator_user):
    maintenance_mode_enable(until=timezone.now() + timedelta(seconds=4), via="test")
    jobs = _submit(operator_user, 2)
    _wait_for(lambda: HeldJob.objects.count() == 2, "holding the 2 jobs")
    assert QuantumJob.objects.filter(status=JobStatus.QUEUED).count() == 2

    # The worker's announcer notices the end (every WORKER_ANNOUNCE_INTERVAL, 1 s in tests) and sends them again.
    for job in jobs:
        job_wait(job, [JobStatus.COMPLETED], timeout=60)
    assert not HeldJob.objects.exists()


@pytest.mark.django_db
def test_the_claim_holds_queued_jobs_but_not_backups_and_a_cancelled_held_job_is_forgotten(operator_user):
    maintenance_mode_enable(via="test")
    held, cancelled = _submit(operator_user, 2)
    backup_job = BackupJob.objects.create(operation="create")

    assert jobs_claim(job_kind("quantum"), [held.pk, cancelled.pk], task_id="t1", worker="w") == []
    assert [job.pk for job in jobs_claim(job_kind("backup"), [backup_job.pk], task_id="t2", worker="w")] == [
        backup_job.pk
    ]
    assert sorted(HeldJob.objects.values_list("job_id", flat=True)) == sorted([held.pk, cancelled.pk])
    # Claiming again (a message delivered twice) holds them once.
    jobs_claim(job_kind("quantum"), [held.pk], task_id="t1", worker="w")
    assert HeldJob.objects.count() == 2

    assert jobs_release_held() == 0  # still on: nothing is sent
    QuantumJob.objects.filter(pk=cancelled.pk).update(status=JobStatus.CANCELLED)
    maintenance_mode_disable(via="test")
    assert jobs_release_held() == 1  # only the one still queued
    assert not HeldJob.objects.exists()
