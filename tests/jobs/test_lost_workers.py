"""A job outlives its worker: with the whole `celery worker` SIGKILLed mid-job (main process and pool child) and
another worker running, the job runs again and completes within 60 s of the kill, with attempts = 2."""

import os
import signal
import subprocess
import sys
import time

import pytest
from django.conf import settings

from apps.audit.models import AuditEvent
from apps.jobs.choices import FINISHED_STATUSES, JobStatus
from apps.quantum.services import JobSpec, job_submit

from ..quantum_circuits import slow_qasm2

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AFTER_KILL_SECONDS = 60


class WorkerProcess:
    """A real `celery worker` (prefork, one child) in its own process group, on the test database and Redis."""

    def __init__(self, name: str, tmp_path):
        database = settings.DATABASES["default"]
        environment = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "project.settings.test",
            "TEST_DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
            "TEST_REDIS_URL": settings.REDIS_URL,
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        }
        self.hostname = f"{name}-{os.getpid()}@lost-worker-test"
        queues = ",".join(queue.name for queue in settings.CELERY_TASK_QUEUES)
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "celery", "-A", "project", "worker", "-Q", queues, "-c", "1", "-P", "prefork"),
                *("--without-heartbeat", "--without-gossip", "--without-mingle", "-n", self.hostname),
            ],
            cwd=PROJECT_DIR,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def holds(self, job) -> bool:
        return job.worker.startswith(f"{self.hostname} ")

    def kill_everything(self) -> None:
        """SIGKILL the main process and its pool children: nothing gets to acknowledge, reject or clean up."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@pytest.fixture
def two_workers(transactional_db, tmp_path):
    workers = [WorkerProcess(name, tmp_path) for name in ("first", "second")]
    yield workers
    for worker in workers:
        worker.stop()


def _wait(job, statuses, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.status in statuses:
            return job
        time.sleep(0.1)
    raise AssertionError(f"{job} stayed {job.status} (worker {job.worker!r}), expected one of {statuses}")


def _kill_the_worker_running(job, workers) -> tuple[WorkerProcess, float]:
    _wait(job, [JobStatus.RUNNING], timeout=90)
    assert job.attempts == 1
    holder = next(worker for worker in workers if worker.holds(job))
    time.sleep(1)  # well into the run
    holder.kill_everything()
    return holder, time.monotonic()


def _assert_ran_again_elsewhere(job, holder, killed_at: float) -> None:
    _wait(job, FINISHED_STATUSES, timeout=AFTER_KILL_SECONDS)
    took = time.monotonic() - killed_at
    assert job.status == JobStatus.COMPLETED, job.error
    assert job.attempts == 2
    assert not holder.holds(job), job.worker
    assert took < AFTER_KILL_SECONDS
    label = job._meta.label_lower
    requeued = AuditEvent.objects.filter(action__endswith=".requeued", object_type=label, object_id=str(job.pk))
    assert requeued.count() == 1


def test_quantum_job_completes_on_another_worker_after_its_worker_is_killed(two_workers, operator_user):
    job = job_submit(owner=operator_user, spec=JobSpec(source=slow_qasm2(22, 24), shots=10, method="statevector"))

    holder, killed_at = _kill_the_worker_running(job, two_workers)

    _assert_ran_again_elsewhere(job, holder, killed_at)
    assert sum(job.counts.values()) == 10
