"""A job outlives its worker: with the whole `celery worker` SIGKILLed mid-job (main process and pool child) and
another worker running, the job runs again and completes, with attempts = 2, on each broker (Redis and RabbitMQ).
The workers heartbeat every second, so the job is requeued within seconds of the kill; the re-run itself gets
minutes, as the suite's other tests may share the machine's cores with it."""

import io
import time

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.audit.models import AuditEvent
from apps.compliance.choices import ReportFormat, ReportKind
from apps.compliance.services import previous_month, report_request
from apps.jobs.choices import FINISHED_STATUSES, JobStatus
from apps.quantum.services import JobSpec, job_submit
from apps.registry.inference import inference_job_create
from apps.registry.services import model_register, version_upload, version_validate
from project.settings.broker import is_amqp
from tests.helpers import WorkerProcess, job_wait
from tests.quantum_circuits import slow_qasm2
from tests.registry_models import build_tiny_classifier, pack_zip

AFTER_KILL_SECONDS = 240
# Waiting for the first run, then for the re-run, within one test.
pytestmark = pytest.mark.timeout(AFTER_KILL_SECONDS + 180)


@pytest.fixture
def two_workers(transactional_db, each_broker, tmp_path):
    # Heartbeats every second, a job lost after 5 s without one: on Redis, where the sweeper brings the job back,
    # the re-run starts within seconds of the kill, as it does on RabbitMQ, and has the rest of AFTER_KILL_SECONDS.
    timing = {"JOBS_HEARTBEAT_INTERVAL": "1", "JOBS_HEARTBEAT_TIMEOUT": "5", "JOBS_SWEEP_INTERVAL": "1"}
    workers = [WorkerProcess(name, tmp_path, **timing) for name in ("first", "second")]
    yield workers
    for worker in workers:
        worker.stop()


def _kill_the_worker_running(job, workers) -> tuple[WorkerProcess, float]:
    job_wait(job, [JobStatus.RUNNING], timeout=90)
    assert job.attempts == 1
    holder = next(worker for worker in workers if worker.holds(job))
    time.sleep(1)  # well into the run
    holder.kill_everything()
    return holder, time.monotonic()


def _assert_ran_again_elsewhere(job, holder, killed_at: float) -> None:
    job_wait(job, FINISHED_STATUSES, timeout=AFTER_KILL_SECONDS)
    took = time.monotonic() - killed_at
    assert job.status == JobStatus.COMPLETED, job.error
    assert job.attempts == 2
    assert not holder.holds(job), job.worker
    assert took < AFTER_KILL_SECONDS
    label = job._meta.label_lower
    requeued = AuditEvent.objects.filter(action__endswith=".requeued", object_type=label, object_id=str(job.pk))
    # Redis keeps a dead worker's message until the visibility timeout: the sweeper requeues the job. RabbitMQ
    # hands the message back as soon as the dead worker's connection closes: the other worker claims it again,
    # unless the sweeper was quicker. The trail says so once either way.
    sweeper = "its worker stopped heartbeating"
    reasons = {sweeper, "the broker redelivered its message after its worker was lost"}
    [(outcome, changes)] = [(event.outcome, event.changes) for event in requeued]
    assert (outcome, changes["attempts"]) == ("failure", 1)
    assert changes["reason"] in (reasons if is_amqp(settings.CELERY_BROKER_URL) else {sweeper})


def test_quantum_job_completes_on_another_worker_after_its_worker_is_killed(two_workers, operator_user):
    job = job_submit(owner=operator_user, spec=JobSpec(source=slow_qasm2(22, 24), shots=10, method="statevector"))

    holder, killed_at = _kill_the_worker_running(job, two_workers)

    _assert_ran_again_elsewhere(job, holder, killed_at)
    assert sum(job.counts.values()) == 10


def test_inference_job_completes_on_another_worker_after_its_worker_is_killed(two_workers, operator_user, tmp_path):
    model = model_register(owner=operator_user, name="lost-worker", task="text-classification")
    artifact = pack_zip(build_tiny_classifier(tmp_path / "model", labels=("negative", "positive")))
    version = version_upload(model=model, upload=io.BytesIO(artifact), actor=operator_user)
    version_validate(version_id=version.pk)
    rows = "text\n" + "".join(f"a calm and pleasant row number {number}\n" for number in range(1500))
    upload = SimpleUploadedFile("rows.csv", rows.encode(), content_type="text/csv")
    job = inference_job_create(owner=operator_user, model=model, upload=upload, number=1)

    holder, killed_at = _kill_the_worker_running(job, two_workers)

    _assert_ran_again_elsewhere(job, holder, killed_at)
    assert job.progress_done == job.progress_total == 1500
    assert job.result_file


def test_report_completes_on_another_worker_after_its_worker_is_killed(two_workers, admin_user):
    # Enough accounts that the access review's PDF takes a while to write.
    get_user_model().objects.bulk_create(
        get_user_model()(username=f"reviewed-{number:05d}", password="!") for number in range(10_000)
    )
    start, end = previous_month()
    report = report_request(
        kind=ReportKind.ACCESS_REVIEW, fmt=ReportFormat.PDF, period_start=start, period_end=end, actor=admin_user
    )

    holder, killed_at = _kill_the_worker_running(report, two_workers)

    _assert_ran_again_elsewhere(report, holder, killed_at)
    assert report.file
    assert report.sha256
