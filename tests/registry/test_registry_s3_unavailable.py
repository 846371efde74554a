"""The registry with a media bucket that cannot be used (a key S3 does not know, a key without permission, no S3
service at the endpoint): users get a clear answer (API 503 saying so, a form error, a failed job saying why),
nothing is left half-done, and no key shows in answers or logs."""

import io
import logging
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from apps.jobs.choices import JobStatus
from apps.registry.inference import inference_job_create, inference_job_run
from apps.registry.loading import pipelines
from apps.registry.models import InferenceJob, ModelVersion
from apps.registry.services import model_register, version_upload, version_validate
from tests.mfa import otp_force_login, staff_force_login
from tests.registry.test_registry_inference import LABELS, _csv, _texts
from tests.registry_models import build_tiny_classifier, pack_zip

pytestmark = [pytest.mark.usefixtures("registry_storage"), pytest.mark.django_db]


@pytest.fixture(scope="module")
def classifier_zip(tmp_path_factory) -> bytes:
    return pack_zip(build_tiny_classifier(tmp_path_factory.mktemp("classifier") / "model", labels=LABELS))


@pytest.fixture
def sentiment(operator_user):
    return model_register(owner=operator_user, name="sentiment", task="text-classification")


@pytest.fixture
def ready_version(media_bucket, sentiment, operator_user, classifier_zip) -> ModelVersion:
    """Version 1, uploaded and validated while the bucket worked."""
    version = version_upload(model=sentiment, upload=io.BytesIO(classifier_zip), actor=operator_user)
    version_validate(version_id=version.pk)
    version.refresh_from_db()
    assert version.status == "ready", version.status_reason
    return version


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.INFO)
    return caplog


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


def _another_host(settings, tmp_path) -> Path:
    """This process becomes a host whose REGISTRY_DIR is empty: it must fetch versions from the bucket."""
    settings.REGISTRY_DIR = tmp_path / "other-host" / "registry"
    pipelines.clear()
    return settings.REGISTRY_DIR


def _assert_unavailable(response, unusable) -> None:
    assert response.status_code == 503, response.content
    assert response.json() == {"detail": unusable.message, "code": "unavailable", "retry_after_seconds": 30}
    assert response["Retry-After"] == "30"


def test_api_upload_to_an_unusable_bucket_is_a_503_and_leaves_no_version_and_no_files(
    unusable_media, sentiment, operator_user, classifier_zip, settings, logs
):
    unusable_media.use()

    response = _client(operator_user).post(
        "/api/v1/registry/models/sentiment/versions/",
        {"artifact": SimpleUploadedFile("model.zip", classifier_zip)},
        format="multipart",
    )

    _assert_unavailable(response, unusable_media)
    assert not ModelVersion.objects.exists()
    assert _files(settings.REGISTRY_DIR) == []
    assert _files(settings.MEDIA_ROOT) == []
    unusable_media.assert_not_shown(response.content.decode(), logs.text)
    assert f"File storage: looking for a file failed: {unusable_media.reason}" in logs.text


def test_admin_upload_to_an_unusable_bucket_is_a_form_error(
    unusable_media, client, roles, sentiment, operator_user, classifier_zip, settings, logs
):
    staff_force_login(client, operator_user)
    unusable_media.use()

    response = client.post(
        "/admin/registry/modelversion/add/",
        {"model": sentiment.pk, "artifact": SimpleUploadedFile("model.zip", classifier_zip)},
    )

    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [unusable_media.message]
    assert not ModelVersion.objects.exists()
    assert _files(settings.REGISTRY_DIR) == []
    unusable_media.assert_not_shown(response.content.decode(), logs.text)


def test_portal_upload_to_an_unusable_bucket_is_a_form_error(
    unusable_media, client, sentiment, operator_user, classifier_zip, settings, logs
):
    otp_force_login(client, operator_user)
    unusable_media.use()

    response = client.post(
        "/registry/sentiment/versions/", {"artifact": SimpleUploadedFile("model.zip", classifier_zip)}
    )

    assert response.status_code == 503
    assert response.context["upload_form"].non_field_errors() == [unusable_media.message]
    assert not ModelVersion.objects.exists()
    assert _files(settings.REGISTRY_DIR) == []
    unusable_media.assert_not_shown(response.content.decode(), logs.text)


def test_prediction_on_a_host_lacking_the_version_is_a_503_when_the_bucket_is_unusable(
    unusable_media, ready_version, operator_user, settings, tmp_path, logs
):
    other_host = _another_host(settings, tmp_path)
    unusable_media.use()

    response = _client(operator_user).post(
        "/api/v1/registry/models/sentiment/predict/", {"inputs": ["fine"], "version": 1}, format="json"
    )

    _assert_unavailable(response, unusable_media)
    assert _files(other_host) == []
    unusable_media.assert_not_shown(response.content.decode(), logs.text)


def test_validation_on_a_host_lacking_the_version_says_the_storage_was_unavailable(
    unusable_media, ready_version, settings, tmp_path
):
    _another_host(settings, tmp_path)
    unusable_media.use()

    version_validate(version_id=ready_version.pk)

    ready_version.refresh_from_db()
    assert ready_version.status == "invalid"
    assert ready_version.status_reason == f"Not validated: {unusable_media.message} Re-validate it."


def test_inference_job_submitted_to_an_unusable_bucket_is_a_503_and_no_job(
    unusable_media, ready_version, operator_user, logs
):
    unusable_media.use()

    response = _client(operator_user).post(
        "/api/v1/registry/inference-jobs/",
        {"model": "sentiment", "version": 1, "file": SimpleUploadedFile("rows.csv", _csv(_texts(5)))},
        format="multipart",
    )

    _assert_unavailable(response, unusable_media)
    assert not InferenceJob.objects.exists()
    unusable_media.assert_not_shown(response.content.decode(), logs.text)


def test_inference_job_whose_input_cannot_be_read_fails_saying_why(unusable_media, ready_version, operator_user, logs):
    upload = SimpleUploadedFile("rows.csv", _csv(_texts(5)))
    job = inference_job_create(owner=operator_user, model=ready_version.model, upload=upload, number=1)
    unusable_media.use()

    summary = inference_job_run(job_id=job.pk, task_id="task-1", worker="celery@here")

    job.refresh_from_db()
    assert (job.status, job.error) == (JobStatus.FAILED, unusable_media.message)
    assert not job.result_file
    assert summary == f"Job {job.pk} failed: {unusable_media.message}"
    unusable_media.assert_not_shown(logs.text)
