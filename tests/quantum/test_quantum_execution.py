"""Quantum jobs on real workers and real qiskit-aer: results, cancel, timeouts, lost workers, stale jobs."""

import os
import signal
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.jobs.choices import JobStatus
from apps.jobs.lifecycle import JobStateError, jobs_requeue_lost
from apps.quantum.models import QuantumJob
from apps.quantum.services import JobSpec, job_cancel, job_submit, jobs_run
from tests.brokers import messages_waiting
from tests.helpers import WorkerProcess, job_wait
from tests.quantum_circuits import ghz_qasm2, ghz_qasm3, slow_qasm2


def test_ghz_qasm2_gives_only_all_zeros_and_all_ones(celery_worker, operator_user):
    job = job_submit(owner=operator_user, spec=JobSpec(source=ghz_qasm2(5), shots=2000))

    job_wait(job, [JobStatus.COMPLETED, JobStatus.FAILED])

    assert job.status == JobStatus.COMPLETED, job.error
    assert set(job.counts) == {"00000", "11111"}
    assert sum(job.counts.values()) == 2000
    assert job.duration_seconds > 0
    assert job.started_at <= job.finished_at
    assert job.attempts == 1
    assert "pid" in job.worker
    assert AuditEvent.objects.filter(action="quantum.job.completed", object_id=str(job.pk)).exists()


def test_ghz_qasm3_gives_only_all_zeros_and_all_ones(celery_worker, operator_user):
    job = job_submit(owner=operator_user, spec=JobSpec(source=ghz_qasm3(3), shots=500, method="statevector"))

    job_wait(job, [JobStatus.COMPLETED, JobStatus.FAILED])

    assert job.qasm_version == 3
    assert job.status == JobStatus.COMPLETED, job.error
    assert set(job.counts) == {"000", "111"}


def test_same_seed_gives_same_counts_and_noise_spreads_them(celery_worker, operator_user):
    noisy = JobSpec(source=ghz_qasm2(4), shots=4000, seed=7, noise={"depolarizing_2q": 0.05, "readout": 0.05})
    first = job_submit(owner=operator_user, spec=noisy)
    second = job_submit(owner=operator_user, spec=noisy)

    for job in (first, second):
        job_wait(job, [JobStatus.COMPLETED, JobStatus.FAILED])

    assert first.status == second.status == JobStatus.COMPLETED
    assert first.counts == second.counts
    assert len(first.counts) > 2  # noise produces outcomes a perfect GHZ state never gives


def test_measure_all_adds_measurements(celery_worker, operator_user):
    source = 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\nx q[1];\n'

    job = job_submit(owner=operator_user, spec=JobSpec(source=source, shots=100, measure_all=True))

    job_wait(job, [JobStatus.COMPLETED, JobStatus.FAILED])
    assert job.counts == {"10": 100}


def test_many_small_jobs_share_simulator_calls_and_all_complete(celery_worker, operator_user):
    from apps.quantum.services import jobs_submit_batch

    jobs = jobs_submit_batch(owner=operator_user, specs=[JobSpec(source=ghz_qasm2(3), shots=64)] * 30)

    for job in jobs:
        job_wait(job, [JobStatus.COMPLETED, JobStatus.FAILED])
    assert {job.status for job in jobs} == {JobStatus.COMPLETED}
    assert all(set(job.counts) <= {"000", "111"} for job in jobs)
    # A batch submission is one audit event listing the jobs.
    submitted = AuditEvent.objects.filter(action="quantum.job.submitted")
    assert submitted.count() == 1
    assert set(submitted.get().changes["jobs"]) == {str(job.pk) for job in jobs}


def test_cancelled_queued_job_never_runs(transactional_db, operator_user):
    job = job_submit(owner=operator_user, spec=JobSpec(source=ghz_qasm2()))

    job_cancel(job=job, actor=operator_user)
    # The worker picks the message up afterwards and must leave the job alone.
    jobs_run(job_ids=[job.pk], task_id="late-message", worker="test")

    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert job.started_at is None
    assert job.counts is None
    assert job.attempts == 0
    with pytest.raises(JobStateError, match="already cancelled"):
        job_cancel(job=job, actor=operator_user)


def test_running_job_is_stopped_within_two_seconds_of_cancel(celery_worker, operator_user):
    job = job_submit(owner=operator_user, spec=JobSpec(source=slow_qasm2(22, 40), shots=10, method="statevector"))
    job_wait(job, [JobStatus.RUNNING])
    time.sleep(0.3)

    asked = time.monotonic()
    job_cancel(job=job, actor=operator_user)
    job_wait(job, [JobStatus.CANCELLED, JobStatus.COMPLETED, JobStatus.FAILED], timeout=10)
    took = time.monotonic() - asked

    assert job.status == JobStatus.CANCELLED
    assert took < 2, f"cancel took {took:.2f} s"
    assert job.counts is None


def test_job_over_timeout_fails_saying_so(celery_worker, operator_user, settings):
    settings.QUANTUM_JOB_TIMEOUT = 1
    job = job_submit(owner=operator_user, spec=JobSpec(source=slow_qasm2(22, 40), shots=10, method="statevector"))

    job_wait(job, [JobStatus.COMPLETED, JobStatus.FAILED], timeout=20)

    assert job.status == JobStatus.FAILED
    assert "Timed out: a job may run for at most 1 second." in job.error


def test_redelivered_job_over_max_attempts_fails_with_the_reason(transactional_db, operator_user, settings):
    settings.QUANTUM_MAX_ATTEMPTS = 2
    job = job_submit(owner=operator_user, spec=JobSpec(source=ghz_qasm2()))
    # As left by a worker that died twice while running it under this task message.
    QuantumJob.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, attempts=2, celery_task_id="message-1")

    jobs_run(job_ids=[job.pk], task_id="message-1", worker="test")

    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "lost during each of its 2 runs (at most 2 are allowed)" in job.error


def test_running_jobs_without_a_heartbeat_are_requeued(transactional_db, operator_user, settings):
    stale = job_submit(owner=operator_user, spec=JobSpec(source=ghz_qasm2()))
    fresh = job_submit(owner=operator_user, spec=JobSpec(source=ghz_qasm2()))
    too_old = timezone.now() - timedelta(seconds=settings.JOBS_HEARTBEAT_TIMEOUT + 5)
    QuantumJob.objects.filter(pk=stale.pk).update(status=JobStatus.RUNNING, attempts=1, heartbeat_at=too_old)
    QuantumJob.objects.filter(pk=fresh.pk).update(status=JobStatus.RUNNING, attempts=1, heartbeat_at=timezone.now())

    moved = jobs_requeue_lost()

    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert moved == {"quantum": 1}
    assert (stale.status, stale.attempts, stale.worker, stale.heartbeat_at) == (JobStatus.QUEUED, 1, "", None)
    assert fresh.status == JobStatus.RUNNING
    assert AuditEvent.objects.filter(action="quantum.job.requeued", object_id=str(stale.pk)).exists()


@pytest.fixture
def worker_process(transactional_db, broker, tmp_path):
    """A separate `celery worker` (prefork, one child) on the test database and the test's broker."""
    worker = WorkerProcess("kill-test", tmp_path)
    yield worker
    worker.stop()


def test_job_whose_worker_is_killed_runs_again_and_completes_once(worker_process, operator_user):
    job = job_submit(owner=operator_user, spec=JobSpec(source=slow_qasm2(22, 20), shots=10, method="statevector"))
    job_wait(job, [JobStatus.RUNNING], timeout=60)
    first_worker = job.worker
    time.sleep(0.5)

    os.kill(int(first_worker.rsplit(" ", 1)[1]), signal.SIGKILL)

    job_wait(job, [JobStatus.COMPLETED, JobStatus.FAILED], timeout=90)
    assert job.status == JobStatus.COMPLETED, job.error
    assert job.attempts == 2
    assert job.worker != first_worker
    assert AuditEvent.objects.filter(action="quantum.job.completed", object_id=str(job.pk)).count() == 1


def test_metrics_count_jobs_shots_and_circuit_sizes(celery_worker, operator_user, client, viewer_user):
    from tests.core.test_metrics import _sample

    job = job_submit(owner=operator_user, spec=JobSpec(source=ghz_qasm2(3), shots=321))
    job_wait(job, [JobStatus.COMPLETED, JobStatus.FAILED])

    client.force_login(viewer_user)
    text = client.get("/metrics").content.decode()
    assert _sample(text, "quantum_jobs_total", status="completed", method="automatic") >= 1
    assert _sample(text, "quantum_shots_total") >= 321
    assert _sample(text, "quantum_circuit_qubits_count") >= 1
    assert _sample(text, "quantum_job_duration_seconds_count") >= 1
    assert _sample(text, "quantum_queue_length") == 0


def test_finishing_jobs_does_not_wait_for_a_submit_by_the_same_owner(transactional_db, operator_user):
    import psycopg
    from django.db import connection

    job = job_submit(owner=operator_user, spec=JobSpec(source=ghz_qasm2(2), shots=10))
    database = settings.DATABASES["default"]
    # Another request of the same owner is submitting: it holds the owner's row (and would
    # soon want the audit chain lock this worker is about to take).
    with psycopg.connect(
        host=database["HOST"], port=database["PORT"], user=database["USER"], dbname=database["NAME"]
    ) as submitter:
        submitter.execute("SELECT 1 FROM accounts_user WHERE id = %s FOR NO KEY UPDATE", [operator_user.pk])
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '2s'")
        try:
            jobs_run(job_ids=[job.pk], task_id="message-1", worker="test")
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET lock_timeout")
        submitter.rollback()

    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETED


def test_busy_worker_takes_no_more_messages_and_higher_priority_job_overtakes_older_ones(worker_process, operator_user):
    busy = job_submit(owner=operator_user, spec=JobSpec(source=slow_qasm2(20, 20), shots=10, method="statevector"))
    job_wait(busy, [JobStatus.RUNNING], timeout=60)
    older = [job_submit(owner=operator_user, spec=JobSpec(source=ghz_qasm2(3), seed=seed)) for seed in (1, 2)]
    urgent = job_submit(owner=operator_user, spec=JobSpec(source=ghz_qasm2(3), seed=3, priority=10))
    time.sleep(0.5)  # time enough for a worker that prefetches to take a message

    # Prefetch 1 with late acknowledgement: the busy worker holds only its running job's message.
    waiting = messages_waiting("quantum")
    busy.refresh_from_db()
    assert busy.status == JobStatus.RUNNING
    assert waiting == 3

    for job in [busy, *older, urgent]:
        job_wait(job, [JobStatus.COMPLETED, JobStatus.FAILED], timeout=90)

    assert {job.status for job in [busy, *older, urgent]} == {JobStatus.COMPLETED}
    assert urgent.started_at < min(job.started_at for job in older)
