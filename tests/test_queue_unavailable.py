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
from django.test import Client

from apps.accounts.tokens import token_create
from apps.audit.models import AuditEvent
from apps.compliance.models import Report
from apps.compliance.services import previous_month
from apps.quantum.models import QuantumJob
from apps.registry.models import InferenceJob
from apps.registry.services import model_register, version_upload, version_validate
from project.celery import app as celery_app

from .helpers import free_port
from .mfa import sudo_force_login
from .registry_models import build_tiny_classifier, pack_zip

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
    transactional_db, operator_user, broker_down, batch
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
    assert (report.status, report.error) == (
        "failed",
        "Not generated: the task queue was unavailable. Ask for it again.",
    )


def test_broker_that_is_up_again_takes_the_next_job(transactional_db, operator_user):
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
