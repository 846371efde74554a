"""Every Celery worker sweeps for jobs whose worker stopped heartbeating, from its start until it stops."""

import threading
import time
from datetime import timedelta

from celery.contrib.testing.worker import start_worker
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.jobs.choices import FINISHED_STATUSES, JobStatus
from apps.quantum.models import QuantumJob
from apps.quantum.services import JobSpec, job_submit
from project.celery import app
from tests.helpers import job_wait
from tests.quantum_circuits import ghz_qasm2


def _sweepers() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "jobs-sweeper" and thread.is_alive()]


def test_a_worker_requeues_a_job_whose_worker_went_silent_and_stops_sweeping_when_it_stops(
    transactional_db, operator_user, settings
):
    settings.JOBS_SWEEP_INTERVAL = 1
    job = job_submit(owner=operator_user, spec=JobSpec(source=ghz_qasm2(3), shots=100))
    # As a worker that died 40 s ago left it: running under its message, silent since.
    silent_since = timezone.now() - timedelta(seconds=40)
    QuantumJob.objects.filter(pk=job.pk).update(
        status=JobStatus.RUNNING, attempts=1, celery_task_id="the-dead-workers-message", heartbeat_at=silent_since
    )

    with start_worker(app, pool="threads", concurrency=1, perform_ping_check=False, queues=["quantum"]):
        assert len(_sweepers()) == 1
        job_wait(job, FINISHED_STATUSES, timeout=60)

    assert (job.status, job.attempts) == (JobStatus.COMPLETED, 2)
    assert AuditEvent.objects.filter(action="quantum.job.requeued", object_id=str(job.pk)).count() == 1
    deadline = time.monotonic() + 5  # it notices within half a second that its worker stopped
    while _sweepers() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _sweepers() == []
