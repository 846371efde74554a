"""Work submitted while the task broker is down: a 503 with Retry-After, and nothing left queued that never runs.

The broker really is down for these tests: Celery is pointed at a local port where nothing listens (through
CELERY_BROKER_URL, which Celery reads before its configured value), so publishing fails as it would in production.
"""

import io
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from apps.accounts.roles import roles_setup
from apps.accounts.tokens import token_create
from apps.audit.models import AuditEvent
from apps.compliance.models import Report
from apps.compliance.services import previous_month
from apps.core.queueing import QueueUnavailable
from apps.core.views.errors import server_error
from apps.quantum.models import QuantumJob
from apps.quantum.services import JobSpec, job_submit
from apps.registry.models import InferenceJob, ModelVersion
from apps.registry.services import model_register, version_upload, version_validate
from project.celery import app as celery_app
from tests.helpers import free_port
from tests.mfa import staff_force_login, sudo_force_login
from tests.registry_models import build_tiny_classifier, pack_zip
from tests.workers import worker_announced

BELL = 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[2];\nh q[0];\ncx q[0],q[1];\nmeasure q -> c;\n'


@contextmanager
def broker_down_context() -> Iterator[None]:
    """Celery's broker at a closed local port; its cached connections are dropped on the way in and out."""
    os.environ["CELERY_BROKER_URL"] = f"redis://127.0.0.1:{free_port()}/0"
    # What Celery itself does in a forked child: forget the pooled connections to the old broker.
    celery_app._after_fork()
    try:
        yield
    finally:
        del os.environ["CELERY_BROKER_URL"]
        celery_app._after_fork()


@pytest.fixture
def broker_down():
    with broker_down_context():
        yield


@pytest.fixture
def quantum_worker(transactional_db):
    """A worker of the quantum queue is running: the router sends quantum jobs only where one is."""
    return worker_announced()


def _bearer(user) -> dict[str, str]:
    secret = token_create(owner=user, name="broker test", scopes=["read", "write"], expires_in_days=1).secret
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def _assert_unavailable(response) -> dict:
    assert response.status_code == 503, response.content
    assert response["Retry-After"] == "30"
    body = response.json()
    assert (body["code"], body["retry_after_seconds"]) == ("unavailable", 30)
    assert "task queue is unavailable" in body["detail"]
    return body


@pytest.mark.parametrize("batch", [False, True], ids=["one job", "batch"])
def test_quantum_job_submitted_while_the_broker_is_down_is_a_503_and_left_failed(
    transactional_db, operator_user, broker_down, batch, quantum_worker
):
    job = {"source": BELL, "shots": 10}
    url, body = ("/api/v1/quantum/jobs/batch/", {"jobs": [job, job]}) if batch else ("/api/v1/quantum/jobs/", job)

    response = Client().post(url, json.dumps(body), content_type="application/json", **_bearer(operator_user))

    _assert_unavailable(response)
    jobs = QuantumJob.objects.all()
    assert [(job.status, job.error) for job in jobs] == [
        ("failed", "Not run: the task queue was unavailable. Submit it again.")
    ] * (2 if batch else 1)
    assert AuditEvent.objects.filter(action="quantum.job.failed", outcome="failure").exists()


def test_inference_job_submitted_while_the_broker_is_down_is_a_503_and_left_failed(
    transactional_db, operator_user, registry_storage, tmp_path
):
    model = model_register(owner=operator_user, name="sentiment", task="text-classification")
    folder = build_tiny_classifier(tmp_path / "classifier", labels=("negative", "positive"))
    # Uploaded and validated while the broker is up; only the job meets the broken broker.
    version = version_upload(model=model, upload=io.BytesIO(pack_zip(folder)), actor=operator_user)
    version_validate(version_id=version.pk)
    headers = _bearer(operator_user)
    upload = io.BytesIO(b"text\ngreat service\nterrible service\n")
    upload.name = "rows.csv"

    with broker_down_context():
        response = Client().post(
            "/api/v1/registry/inference-jobs/", {"model": "sentiment", "version": 1, "file": upload}, **headers
        )

    _assert_unavailable(response)
    job = InferenceJob.objects.get()
    assert (job.status, job.error) == ("failed", "Not run: the task queue was unavailable. Submit it again.")
    assert job.input_file.storage.exists(job.input_file.name), "the failed job keeps its input"


def test_report_requested_while_the_broker_is_down_is_a_503_and_left_failed(
    transactional_db, compliance_user, broker_down
):
    client = Client()
    sudo_force_login(client, compliance_user)
    start, end = previous_month()
    body = {"kind": "mfa_coverage", "format": "json", "period_start": start.isoformat(), "period_end": end.isoformat()}

    response = client.post("/api/v1/compliance/reports/", json.dumps(body), content_type="application/json")

    _assert_unavailable(response)
    report = Report.objects.get()
    assert (report.status, report.error) == ("failed", "Not run: the task queue was unavailable. Submit it again.")


def test_broker_that_is_up_again_takes_the_next_job(transactional_db, operator_user, quantum_worker):
    with broker_down_context():
        refused = Client().post(
            "/api/v1/quantum/jobs/",
            json.dumps({"source": BELL}),
            content_type="application/json",
            **_bearer(operator_user),
        )
    accepted = Client().post(
        "/api/v1/quantum/jobs/",
        json.dumps({"source": BELL}),
        content_type="application/json",
        **_bearer(operator_user),
    )

    assert (refused.status_code, accepted.status_code) == (503, 201)
    assert QuantumJob.objects.get(pk=accepted.json()["id"]).status == "queued"


# --- Model versions: their validation is queued work too


NOT_VALIDATED = "Not validated: the task queue was unavailable. Re-validate it."


@pytest.fixture
def tiny_zip(tmp_path) -> bytes:
    return pack_zip(build_tiny_classifier(tmp_path / "classifier", labels=("negative", "positive")))


def test_version_uploaded_while_the_broker_is_down_is_a_503_and_left_invalid(
    transactional_db, operator_user, registry_storage, broker_down, tiny_zip
):
    model_register(owner=operator_user, name="sentiment", task="text-classification")
    artifact = io.BytesIO(tiny_zip)
    artifact.name = "model.zip"

    response = Client().post(
        "/api/v1/registry/models/sentiment/versions/", {"artifact": artifact}, **_bearer(operator_user)
    )

    body = _assert_unavailable(response)
    assert "Re-validate it in 30 seconds" in body["detail"]
    version = ModelVersion.objects.get()
    assert (version.status, version.status_reason) == ("invalid", NOT_VALIDATED)
    assert version.artifact.storage.exists(version.artifact.name), "the version keeps its artifact to re-validate"
    assert AuditEvent.objects.filter(action="registry.version.validated", outcome="failure").exists()


def test_version_upload_page_while_the_broker_is_down_shows_why_and_leaves_the_version_invalid(
    transactional_db, operator_user, registry_storage, broker_down, tiny_zip
):
    model = model_register(owner=operator_user, name="sentiment", task="text-classification")
    client = _staff_client(operator_user)

    response = client.post(
        "/admin/registry/modelversion/add/",
        {"model": model.pk, "artifact": SimpleUploadedFile("model.zip", tiny_zip, content_type="application/zip")},
    )

    assert response.status_code == 200
    assert "The task queue is unavailable" in response.context["form"].non_field_errors()[0]
    assert "Re-validate it in 30 seconds" in response.content.decode()
    version = ModelVersion.objects.get()
    assert (version.status, version.status_reason) == ("invalid", NOT_VALIDATED)


def test_revalidate_action_while_the_broker_is_down_says_so_and_leaves_the_rest_untouched(
    transactional_db, operator_user, registry_storage, tiny_zip
):
    model = model_register(owner=operator_user, name="sentiment", task="text-classification")
    first, second = (version_upload(model=model, upload=io.BytesIO(tiny_zip), actor=operator_user) for _ in range(2))
    ModelVersion.objects.update(status="invalid", status_reason="No tokenizer.")
    client = _staff_client(operator_user)

    with broker_down_context():
        response = client.post(
            "/admin/registry/modelversion/",
            {"action": "revalidate_versions", "_selected_action": [first.pk, second.pk]},
        )

    assert response.status_code == 302
    assert _messages(response) == [
        (
            "error",
            "The task queue is unavailable, so the validation of sentiment v1 could not be queued and was not "
            "started; the version keeps its earlier status. Re-validate it in 30 seconds or later. The other "
            "selected model version was left as it was.",
        )
    ]
    first.refresh_from_db(), second.refresh_from_db()
    assert [(first.status, first.status_reason), (second.status, second.status_reason)] == [
        ("invalid", "No tokenizer."),
        ("invalid", "No tokenizer."),
    ]


@pytest.fixture
def ready_version(transactional_db, operator_user, registry_storage, tiny_zip):
    """A validated model version, and an operator's admin client."""
    model = model_register(owner=operator_user, name="sentiment", task="text-classification")
    version = version_upload(model=model, upload=io.BytesIO(tiny_zip), actor=operator_user)
    version_validate(version_id=version.pk)
    return version, _staff_client(operator_user)


def test_ready_version_stays_ready_when_its_revalidation_cannot_be_queued(ready_version):
    """A production model must not stop serving because the queue was down when someone asked to re-check it."""
    version, client = ready_version

    with broker_down_context():
        response = client.post(
            "/admin/registry/modelversion/", {"action": "revalidate_versions", "_selected_action": [version.pk]}
        )

    assert response.status_code == 302
    assert "keeps its earlier status" in _messages(response)[0][1]
    version.refresh_from_db()
    assert version.status == "ready"


def test_evaluation_action_while_the_broker_is_down_says_so_and_leaves_the_job_failed(ready_version):
    version, client = ready_version
    labelled = b"text,label\ngreat service,positive\nterrible service,negative\n"

    with broker_down_context():
        response = client.post(
            "/admin/registry/modelversion/",
            {
                "action": "run_evaluation",
                "_selected_action": [version.pk],
                "apply": "yes",
                "data": SimpleUploadedFile("eval.csv", labelled, content_type="text/csv"),
            },
        )

    assert response.status_code == 302
    job = InferenceJob.objects.get()
    assert _messages(response) == [
        (
            "error",
            f"The task queue is unavailable, so job #{job.pk} could not be queued and was marked failed; nothing "
            "will run. Submit again in 30 seconds or later.",
        )
    ]
    assert (job.status, job.error) == ("failed", "Not run: the task queue was unavailable. Submit it again.")


def test_rerun_action_while_the_broker_is_down_says_so_and_leaves_the_copy_failed(
    transactional_db, operator_user, admin_user, quantum_worker
):
    original = job_submit(owner=operator_user, spec=JobSpec(source=BELL, shots=10))
    client = _staff_client(admin_user)

    with broker_down_context():
        response = client.post(
            "/admin/quantum/quantumjob/", {"action": "rerun_jobs", "_selected_action": [original.pk]}
        )

    assert response.status_code == 302
    assert _messages(response) == [
        (
            "error",
            "The task queue is unavailable, so the job could not be queued and was marked failed; nothing will run. "
            "Submit again in 30 seconds or later.",
        )
    ]
    copy = QuantumJob.objects.get(rerun_of=original)
    assert (copy.status, copy.error) == ("failed", "Not run: the task queue was unavailable. Submit it again.")


def test_report_asked_for_on_the_compliance_page_while_the_broker_is_down_is_a_form_error_and_left_failed(
    transactional_db, compliance_user, broker_down
):
    client = Client()
    sudo_force_login(client, compliance_user)

    response = client.post(
        "/compliance/",
        {"kind": "mfa_coverage", "start_date": "2025-01-01", "end_date": "2025-01-31", "format": "json"},
    )

    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [
        "The task queue is unavailable, so the report could not be queued and was marked failed; nothing will run. "
        "Submit again in 30 seconds or later."
    ]
    assert "The task queue is unavailable, so the report could not be queued" in response.content.decode()
    report = Report.objects.get()
    assert (report.status, report.error) == ("failed", "Not run: the task queue was unavailable. Submit it again.")


def test_a_queue_refusal_no_door_caught_is_a_503_page_not_a_500(rf):
    request = rf.get("/somewhere/")
    try:
        raise QueueUnavailable("refused")
    except QueueUnavailable:
        # Django calls its 500 handler while the exception is still being handled.
        response = server_error(request)

    assert (response.status_code, response["Retry-After"]) == (503, "30")


def _staff_client(user) -> Client:
    roles_setup()
    return staff_force_login(Client(), user)


def _messages(response) -> list[tuple[str, str]]:
    return [(message.level_tag, str(message)) for message in get_messages(response.wsgi_request)]
