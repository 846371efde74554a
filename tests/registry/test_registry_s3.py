"""The registry with media in an S3 bucket: artifacts, inputs and results live there, and each host's REGISTRY_DIR
is a cache that a host lacking a version fills from the stored artifact (checked against its SHA-256)."""

import io
import threading
import zipfile
from pathlib import Path

import pytest

from apps.jobs.choices import FINISHED_STATUSES
from apps.registry.loading import pipelines
from apps.registry.models import ModelVersion
from apps.registry.services import (
    RegistryError,
    model_register,
    predict,
    version_directory,
    version_directory_ready,
    version_revalidate,
    version_upload,
)
from tests.conftest import MEDIA_BUCKET, MEDIA_KEY_PREFIX
from tests.helpers import job_wait
from tests.registry.test_registry_inference import LABELS, _csv, _result_rows, _submit, _texts
from tests.registry_models import build_tiny_classifier, pack_zip
from tests.s3 import object_keys

pytestmark = pytest.mark.usefixtures("registry_storage")


@pytest.fixture(scope="module")
def classifier_zip(tmp_path_factory) -> bytes:
    return pack_zip(build_tiny_classifier(tmp_path_factory.mktemp("classifier") / "model", labels=LABELS))


@pytest.fixture
def hosts(settings, tmp_path):
    """Switches this process (and the worker thread in it) to another host: its own empty data directory."""

    def switch_to(name: str) -> Path:
        settings.REGISTRY_DIR = tmp_path / name / "registry"
        pipelines.clear()
        return settings.REGISTRY_DIR

    return switch_to


@pytest.fixture
def sentiment(operator_user):
    return model_register(owner=operator_user, name="sentiment", task="text-classification")


def _version_ready(version: ModelVersion) -> ModelVersion:
    job_wait(version, {"ready", "invalid"})
    assert version.status == "ready", version.status_reason
    return version


def _local_files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


def _relative_files(folder: Path) -> list[str]:
    return sorted(path.relative_to(folder).as_posix() for path in _local_files(folder))


def test_version_uploaded_on_one_host_is_validated_and_predicted_on_another_from_the_bucket(
    media_bucket, celery_worker, hosts, sentiment, operator_user, classifier_zip, settings
):
    hosts("a")
    version = _version_ready(version_upload(model=sentiment, upload=io.BytesIO(classifier_zip), actor=operator_user))
    assert object_keys(media_bucket, MEDIA_BUCKET) == [f"{MEDIA_KEY_PREFIX}/{version.artifact.name}"]
    assert (version_directory(version) / "config.json").is_file()

    registry_b = hosts("b")
    version = _version_ready(version_revalidate(version=version, actor=operator_user))
    result = predict(model=sentiment, inputs=["the portal is great"], actor=operator_user, number=version.version)

    assert version_directory(version).is_relative_to(registry_b)
    assert (version_directory(version) / "config.json").is_file()
    assert _relative_files(version_directory(version)) == sorted(version.files)
    assert result["outputs"][0]["label"] in LABELS
    assert _local_files(registry_b / ".incoming") == []
    assert _local_files(settings.MEDIA_ROOT) == []


def test_artifact_changed_in_the_bucket_is_refused_on_a_host_that_lacks_the_version(
    media_bucket, hosts, sentiment, operator_user, classifier_zip
):
    hosts("a")
    version = version_upload(model=sentiment, upload=io.BytesIO(classifier_zip), actor=operator_user)
    ModelVersion.objects.filter(pk=version.pk).update(status="ready")
    # A sound archive, but not the one uploaded: only its checksum tells.
    swapped = io.BytesIO(classifier_zip)
    with zipfile.ZipFile(swapped, "a") as archive:
        archive.writestr("notes.txt", "swapped in the bucket")
    key = f"{MEDIA_KEY_PREFIX}/{version.artifact.name}"
    media_bucket.put_object(Bucket=MEDIA_BUCKET, Key=key, Body=swapped.getvalue())

    registry_b = hosts("b")
    with pytest.raises(RegistryError) as refused:
        predict(model=sentiment, inputs=["fine"], actor=operator_user, number=version.version)

    assert refused.value.status == 409
    assert refused.value.message.startswith(f"{version} cannot be loaded: its stored artifact was refused: ")
    assert f"not the {version.sha256} recorded when it was uploaded" in refused.value.message
    assert _local_files(registry_b) == []


def test_processes_filling_the_same_version_at_once_all_get_the_complete_folder(
    media_bucket, hosts, sentiment, operator_user, classifier_zip
):
    hosts("a")
    version = version_upload(model=sentiment, upload=io.BytesIO(classifier_zip), actor=operator_user)
    registry_b = hosts("b")
    version = ModelVersion.objects.select_related("model").get(pk=version.pk)
    start, folders, errors = threading.Barrier(4), [], []

    def fill():
        start.wait()
        try:
            folders.append(version_directory_ready(version))
        except Exception as exc:  # reported below, with the others
            errors.append(exc)

    threads = [threading.Thread(target=fill) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    assert folders == [version_directory(version)] * 4
    assert _relative_files(folders[0]) == sorted(version.files)
    assert _local_files(registry_b / ".incoming") == []


def test_inference_job_reads_its_input_from_the_bucket_and_writes_its_results_there(
    media_bucket, celery_worker, hosts, sentiment, operator_user, classifier_zip, settings
):
    hosts("a")
    _version_ready(version_upload(model=sentiment, upload=io.BytesIO(classifier_zip), actor=operator_user))
    registry_b = hosts("b")
    texts = _texts(300)

    job = _submit(operator_user, sentiment, _csv(texts))
    job_wait(job, FINISHED_STATUSES)

    assert job.status == "completed", job.error
    keys = object_keys(media_bucket, MEDIA_BUCKET)
    assert f"{MEDIA_KEY_PREFIX}/{job.input_file.name}" in keys
    assert f"{MEDIA_KEY_PREFIX}/{job.result_file.name}" in keys
    assert job.result_file.name.startswith("registry/results/")
    rows, _, _ = _result_rows(job)
    assert [row["text"] for row in rows] == texts
    assert {row["predicted_label"] for row in rows} <= set(LABELS)
    assert (registry_b / "sentiment" / "v1" / "config.json").is_file()
    assert _local_files(settings.MEDIA_ROOT) == []
