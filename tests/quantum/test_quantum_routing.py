"""Routing by cost: the memory and time estimated at submit pick a queue of QUANTUM_QUEUES, and a job is sent only
where a live worker (real `celery worker` processes on separate queues) announced it can take it."""

import time

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from apps.jobs.choices import JobStatus
from apps.jobs.models import WorkerPresence
from apps.jobs.workers import has_gpu, workers_live
from apps.quantum.models import QuantumJob
from apps.quantum.services import JobSpec, JobValidationError, job_route, job_submit, jobs_send_waiting
from project.settings.env import Environment
from project.settings.quantum_queues import quantum_queues
from tests.helpers import WorkerProcess, job_wait
from tests.quantum_circuits import ghz_qasm2
from tests.workers import worker_announced

# quantum takes jobs whose state fits in 1 MiB (16 qubits as a state vector); larger ones go to quantum-large.
QUEUES = "quantum:memory_mb=1:seconds=30,quantum-large,quantum-gpu:processor=gpu"
SMALL = ghz_qasm2(3)
# 17 qubits as a state vector: 2 MiB.
LARGE = ghz_qasm2(17)


@pytest.fixture
def broker():
    # Routing is the portal's own choice of queue, the same on either broker: Redis only, to spare worker starts.
    return settings.CELERY_BROKER_URL


@pytest.fixture
def queues(settings):
    settings.QUANTUM_QUEUES = quantum_queues(Environment({"QUANTUM_QUEUES": QUEUES}))
    return settings.QUANTUM_QUEUES


@pytest.fixture
def start_worker(transactional_db, broker, tmp_path):
    started = []

    def start(name: str, queue: str, memory_mb: int) -> WorkerProcess:
        worker = WorkerProcess(name, tmp_path / name, queues=(queue,), WORKER_MEMORY_MB=str(memory_mb))
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def _wait_announced(worker: WorkerProcess, timeout: float = 60) -> WorkerPresence:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for presence in workers_live():
            if presence.hostname == worker.hostname:
                return presence
        assert worker.process.poll() is None, f"worker {worker.hostname} exited with {worker.process.returncode}"
        time.sleep(0.1)
    raise AssertionError(f"worker {worker.hostname} did not announce itself within {timeout} s")


def _spec(source: str, **options) -> JobSpec:
    return JobSpec(source=source, shots=100, method="statevector", **options)


def test_large_job_runs_on_the_large_queue_worker_and_small_one_on_the_small(queues, start_worker, operator_user):
    small_worker = start_worker("small", "quantum", memory_mb=64)
    large_worker = start_worker("large", "quantum-large", memory_mb=512)
    small_presence, large_presence = (_wait_announced(worker) for worker in (small_worker, large_worker))
    assert (small_presence.queues, small_presence.memory_bytes) == (["quantum"], 64 * 2**20)
    assert (large_presence.queues, large_presence.memory_bytes) == (["quantum-large"], 512 * 2**20)
    assert small_presence.processor == large_presence.processor == "cpu"

    small = job_submit(owner=operator_user, spec=_spec(SMALL))
    large = job_submit(owner=operator_user, spec=_spec(LARGE))

    assert (small.queue, large.queue) == ("quantum", "quantum-large")
    for job in (small, large):
        job_wait(job, [JobStatus.COMPLETED, JobStatus.FAILED], timeout=120)
        assert job.status == JobStatus.COMPLETED, job.error
    assert small_worker.holds(small), small.worker
    assert large_worker.holds(large), large.worker
    assert set(large.counts) == {"0" * 17, "1" * 17}
    # A worker that stops says so: its row goes at once, not after WORKER_ANNOUNCE_TIMEOUT.
    small_worker.stop()
    assert not WorkerPresence.objects.filter(hostname=small_worker.hostname).exists()


def test_job_no_running_worker_can_take_waits_with_the_reason_and_runs_when_one_starts(
    queues, start_worker, operator_user, api_client
):
    _wait_announced(start_worker("small", "quantum", memory_mb=64))

    large = job_submit(owner=operator_user, spec=_spec(LARGE))
    time.sleep(3)  # several announcements of the small worker: none sends the job to it

    large.refresh_from_db()
    assert (large.status, large.queue) == (JobStatus.QUEUED, "quantum-large")
    assert "no running worker takes the quantum-large queue" in large.status_reason
    api_client.force_authenticate(operator_user)
    listed = api_client.get(f"/api/v1/quantum/jobs/{large.pk}/").json()
    assert listed["status_reason"] == large.status_reason

    large_worker = start_worker("large", "quantum-large", memory_mb=512)

    job_wait(large, [JobStatus.COMPLETED, JobStatus.FAILED], timeout=120)
    assert large.status == JobStatus.COMPLETED, large.error
    assert large_worker.holds(large)
    assert large.status_reason == ""


def test_worker_of_the_queue_without_enough_memory_does_not_get_the_job(queues, transactional_db, operator_user):
    worker_announced("tight@test", queues=("quantum-large",), memory_mb=1)

    large = job_submit(owner=operator_user, spec=_spec(LARGE))

    large.refresh_from_db()
    assert large.status == JobStatus.QUEUED
    assert "needs 2.0 MiB" in large.status_reason
    assert "offer at most 1.0 MiB" in large.status_reason


def test_job_page_shows_why_a_queued_job_waits(queues, transactional_db, operator_user, client):
    large = job_submit(owner=operator_user, spec=_spec(LARGE))
    client.force_login(operator_user)

    page = client.get(f"/dashboard/jobs/{large.pk}/").content.decode()

    assert 'id="job-status-reason"' in page
    assert "no running worker takes the quantum-large queue" in page
    assert "quantum-large" in page


def test_gpu_jobs_go_to_the_gpu_queue_and_wait_for_a_gpu_worker(queues, transactional_db, operator_user):
    worker_announced("cpu-only@test", queues=("quantum", "quantum-large"), memory_mb=1024)

    job = job_submit(owner=operator_user, spec=_spec(SMALL, processor="gpu"))

    job.refresh_from_db()
    assert (job.queue, job.processor, job.status) == ("quantum-gpu", "gpu", JobStatus.QUEUED)
    assert "quantum-gpu" in job.status_reason
    # A worker told to consume the GPU queue without having a GPU is no place for it either.
    worker_announced("misconfigured@test", queues=("quantum-gpu",), memory_mb=1024)
    assert jobs_send_waiting() == 0
    worker_announced("gpu@test", queues=("quantum-gpu",), memory_mb=1024, processor="gpu")
    assert jobs_send_waiting() == 1
    job.refresh_from_db()
    assert job.status_reason == ""


def test_estimates_pick_the_first_queue_whose_limits_fit(queues):
    assert job_route(processor="cpu", memory_bytes=2**20, seconds=1) == "quantum"
    assert job_route(processor="cpu", memory_bytes=2**20 + 1, seconds=1) == "quantum-large"
    assert job_route(processor="cpu", memory_bytes=16, seconds=31) == "quantum-large"
    assert job_route(processor="gpu", memory_bytes=2**30, seconds=999) == "quantum-gpu"


def test_job_that_fits_no_queue_is_refused_naming_the_limits(settings, db):
    settings.QUANTUM_QUEUES = quantum_queues(Environment({"QUANTUM_QUEUES": "quantum:memory_mb=1"}))

    with pytest.raises(JobValidationError) as refused:
        job_route(processor="cpu", memory_bytes=2 * 2**20, seconds=1)

    assert "2.0 MiB" in refused.value.message
    assert "quantum: up to 1 MiB" in refused.value.message


def test_larger_circuits_are_estimated_to_need_more_time_and_memory(queues, transactional_db, operator_user):
    worker_announced(queues=("quantum", "quantum-large"))
    small = job_submit(owner=operator_user, spec=_spec(ghz_qasm2(10)))
    large = job_submit(owner=operator_user, spec=_spec(ghz_qasm2(16)))

    assert large.estimated_memory_bytes == 64 * small.estimated_memory_bytes
    assert large.estimated_seconds > small.estimated_seconds
    assert QuantumJob.objects.get(pk=large.pk).status_reason == ""


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("quantum:memory_mb=lots", "'memory_mb=lots'"),
        ("quantum,quantum", "each once"),
        ("registry", "not a queue name of its own"),
        ("quantum-gpu:processor=gpu", "at least one cpu queue"),
        ("quantum:processor=tpu", "processor=cpu|gpu"),
    ],
)
def test_bad_queue_settings_are_refused_naming_the_variable(value, problem):
    with pytest.raises(ImproperlyConfigured) as refused:
        quantum_queues(Environment({"QUANTUM_QUEUES": value}))

    assert "QUANTUM_QUEUES" in str(refused.value)
    assert problem in str(refused.value)


@pytest.mark.skipif(not has_gpu(), reason="no GPU here: qiskit-aer lists no GPU device, or no NVIDIA driver is loaded")
def test_gpu_job_runs_on_a_gpu_worker(queues, start_worker, operator_user):
    worker = start_worker("gpu", "quantum-gpu", memory_mb=1024)
    presence = _wait_announced(worker)
    assert presence.processor == "gpu"

    job = job_submit(owner=operator_user, spec=_spec(LARGE, processor="gpu"))

    job_wait(job, [JobStatus.COMPLETED, JobStatus.FAILED], timeout=120)
    assert job.status == JobStatus.COMPLETED, job.error
    assert worker.holds(job)
