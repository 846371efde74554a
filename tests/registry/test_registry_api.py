"""Model registry API: register, upload (safely), validate, move aliases, predict, batch jobs; per role."""

import csv
import io
import json
import os
import time
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from apps.core.choices import Role
from apps.registry.models import InferenceJob, ModelVersion, RegisteredModel
from apps.registry.services import model_register, version_upload, version_validate
from tests.factories import UserFactory
from tests.helpers import api_error
from tests.registry_models import (
    BAD_ARTIFACTS,
    build_tiny_classifier,
    build_tiny_fill_mask,
    pack_tar_gz,
    pack_zip,
)

pytestmark = pytest.mark.usefixtures("registry_storage")

MODELS_URL = "/api/v1/registry/models/"
JOBS_URL = "/api/v1/registry/inference-jobs/"
LABELS_V1 = ("negative", "positive")
LABELS_V2 = ("ham", "spam", "eggs")
TEXTS = ["the service is great", "nothing works", "the queue is stuck again"]


def _model_url(name: str = "sentiment") -> str:
    return f"{MODELS_URL}{name}/"


def _versions_url(name: str = "sentiment") -> str:
    return f"{_model_url(name)}versions/"


def _version_url(number: int, name: str = "sentiment") -> str:
    return f"{_versions_url(name)}{number}/"


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _upload(client: APIClient, data: bytes, *, filename: str = "model.zip", name: str = "sentiment"):
    return client.post(_versions_url(name), {"artifact": SimpleUploadedFile(filename, data)}, format="multipart")


def _stored_files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if not path.is_dir()] if root.exists() else []


def _wait_for_status(client: APIClient, number: int, *, name: str = "sentiment") -> dict:
    deadline = time.monotonic() + 60
    version = client.get(_version_url(number, name)).json()
    while version["status"] == "validating" and time.monotonic() < deadline:
        time.sleep(0.05)
        version = client.get(_version_url(number, name)).json()
    return version


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory) -> Path:
    return build_tiny_classifier(tmp_path_factory.mktemp("classifier") / "model", labels=LABELS_V1)


@pytest.fixture(scope="module")
def classifier_v2_dir(tmp_path_factory) -> Path:
    return build_tiny_classifier(tmp_path_factory.mktemp("classifier-v2") / "model", labels=LABELS_V2)


@pytest.fixture(scope="module")
def fill_mask_dir(tmp_path_factory) -> Path:
    return build_tiny_fill_mask(tmp_path_factory.mktemp("fill-mask") / "model")


@pytest.fixture
def operator(operator_user) -> APIClient:
    return _client(operator_user)


@pytest.fixture
def admin(admin_user) -> APIClient:
    return _client(admin_user)


@pytest.fixture
def other_operator(db):
    return UserFactory(username="olga-operator", roles=[Role.OPERATOR])


@pytest.fixture
def sentiment(operator_user) -> RegisteredModel:
    return model_register(owner=operator_user, name="sentiment", task="text-classification", description="Moods")


def _ready_version(model: RegisteredModel, folder: Path, actor) -> ModelVersion:
    """A version uploaded and validated in this process (the same services the worker runs)."""
    version = version_upload(model=model, upload=io.BytesIO(pack_zip(folder)), actor=actor)
    version_validate(version_id=version.pk)
    version.refresh_from_db()
    assert version.status == "ready", version.status_reason
    return version


# --- Registering models


@pytest.mark.django_db
def test_operator_registers_a_model_and_every_role_reads_it(operator, request):
    body = {"name": "sentiment", "task": "text-classification", "description": "Moods", "tags": ["nlp", "demo"]}

    response = operator.post(MODELS_URL, body, format="json")

    assert response.status_code == 201, response.content
    created = response.json()
    assert response["Location"].endswith(_model_url())
    assert (created["name"], created["task"], created["owner"]) == (
        "sentiment",
        "text-classification",
        "oscar-operator",
    )
    assert (created["tags"], created["aliases"], created["latest_version"], created["versions"]) == (
        ["nlp", "demo"],
        {},
        None,
        [],
    )
    for role in ("viewer_user", "compliance_user", "admin_user"):
        reader = _client(request.getfixturevalue(role))
        assert [model["name"] for model in reader.get(MODELS_URL).json()["results"]] == ["sentiment"]
        assert reader.get(_model_url()).json()["description"] == "Moods"


@pytest.mark.django_db
def test_registering_a_taken_name_is_409(operator, sentiment):
    response = operator.post(MODELS_URL, {"name": "sentiment", "task": "fill-mask"}, format="json")

    assert api_error(response, 409, "conflict")["detail"] == "A model named 'sentiment' already exists."
    assert RegisteredModel.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"name": "Bad Name", "task": "fill-mask"}, "name", "Model name 'Bad Name': Use 1 to 100 lowercase letters"),
        ({"name": "ok", "task": "image-to-text"}, "task", "Unknown task 'image-to-text'; choose one of text-"),
        ({"name": "ok", "task": "fill-mask", "tags": [str(n) for n in range(11)]}, "tags", "At most 10 tags; got 11."),
        ({"task": "fill-mask"}, "name", "This field is required."),
    ],
    ids=["name", "task", "tags", "missing-name"],
)
def test_invalid_registration_names_the_field(operator, body, field, message):
    errors = api_error(operator.post(MODELS_URL, body, format="json"), 400, "invalid")["errors"]

    assert errors[field][0].startswith(message)
    assert not RegisteredModel.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["viewer_user", "compliance_user", "outsider_user"])
def test_only_operators_and_admins_register_models(request, role):
    client = _client(request.getfixturevalue(role))

    response = client.post(MODELS_URL, {"name": "sentiment", "task": "fill-mask"}, format="json")

    assert api_error(response, 403, "permission_denied")["detail"].startswith(
        "Only operators and administrators may change the model registry or run its models"
    )
    assert not RegisteredModel.objects.exists()


@pytest.mark.django_db
def test_user_without_a_role_cannot_read_the_registry(outsider_user, sentiment):
    client = _client(outsider_user)

    for url in (MODELS_URL, _model_url(), _versions_url()):
        assert api_error(client.get(url), 403, "permission_denied")["detail"] == (
            "Reading the model registry needs a role: admin, operator, viewer or compliance."
        )


@pytest.mark.django_db
def test_unknown_model_is_404_naming_it(operator):
    assert api_error(operator.get(_model_url("nope")), 404, "not_found")
    assert api_error(operator.get(_versions_url("nope")), 404, "not_found")["detail"] == "No model named 'nope'."


@pytest.mark.django_db
def test_model_list_filters_by_task_and_owner(operator, operator_user, other_operator, sentiment):
    model_register(owner=other_operator, name="masker", task="fill-mask")

    def names(**query):
        return [model["name"] for model in operator.get(MODELS_URL, query).json()["results"]]

    assert names() == ["masker", "sentiment"]
    assert names(task="fill-mask") == ["masker"]
    assert names(owner="oscar-operator") == ["sentiment"]


# --- Uploading versions: the whole way with a worker


@pytest.mark.parametrize(("pack", "filename"), [(pack_zip, "model.zip"), (pack_tar_gz, "model.tar.gz")])
def test_uploaded_version_is_validated_by_the_worker_and_predicts_one_label_per_input(
    celery_worker, operator, operator_user, classifier_dir, pack, filename
):
    model_register(owner=operator_user, name="sentiment", task="text-classification")
    data = pack(classifier_dir)

    response = _upload(operator, data, filename=filename)

    assert response.status_code == 201, response.content
    created = response.json()
    assert response["Location"].endswith(_version_url(1))
    assert (created["version"], created["status"], created["size_bytes"]) == (1, "validating", len(data))
    assert "config.json" in created["files"]
    assert "<h1>Tiny sentiment classifier</h1>" in created["card_html"]
    assert "<script" not in created["card_html"]

    version = _wait_for_status(operator, 1)

    assert version["status"] == "ready", version["status_reason"]
    assert version["labels"] == list(LABELS_V1)
    assert version["architectures"] == ["BertForSequenceClassification"]
    assert version["parameter_count"] > 0
    response = operator.post(_model_url() + "predict/", {"inputs": TEXTS, "version": 1}, format="json")
    assert response.status_code == 200, response.content
    prediction = response.json()
    assert (prediction["model"], prediction["version"], prediction["alias"]) == ("sentiment", 1, None)
    assert len(prediction["outputs"]) == len(TEXTS)
    assert {output["label"] for output in prediction["outputs"]} <= set(LABELS_V1)
    assert all(0 <= output["score"] <= 1 for output in prediction["outputs"])


def test_model_of_the_wrong_task_is_accepted_then_marked_invalid_with_the_reason(
    celery_worker, operator, operator_user, fill_mask_dir
):
    model_register(owner=operator_user, name="sentiment", task="text-classification")

    assert _upload(operator, pack_zip(fill_mask_dir)).json()["status"] == "validating"
    version = _wait_for_status(operator, 1)

    assert version["status"] == "invalid"
    assert version["status_reason"] == (
        "config.json declares the architectures BertForMaskedLM, which do not fit the task text-classification "
        "(it needs an architecture ending in ForSequenceClassification)."
    )
    response = operator.post(_model_url() + "predict/", {"inputs": TEXTS, "version": 1}, format="json")
    assert api_error(response, 409, "conflict")["detail"] == "sentiment v1 is invalid and cannot be used."


# --- Aliases and predictions


@pytest.mark.django_db
def test_prediction_follows_the_alias_when_it_moves(
    operator, operator_user, sentiment, classifier_dir, classifier_v2_dir
):
    _ready_version(sentiment, classifier_dir, operator_user)
    _ready_version(sentiment, classifier_v2_dir, operator_user)

    def predict_staging() -> dict:
        response = operator.post(_model_url() + "predict/", {"inputs": TEXTS, "alias": "staging"}, format="json")
        assert response.status_code == 200, response.content
        return response.json()

    moved = operator.post(_model_url() + "aliases/", {"alias": "staging", "version": 1}, format="json")
    assert moved.status_code == 200, moved.content
    assert moved.json() | {"updated_at": None} == {
        "model": "sentiment",
        "alias": "staging",
        "version": 1,
        "canary": None,
        "versions": [{"version": 1, "weight": 100}],
        "previous_version": None,
        "updated_by": "oscar-operator",
        "updated_at": None,
    }
    first = predict_staging()
    assert (first["version"], first["alias"]) == (1, "staging")
    assert {output["label"] for output in first["outputs"]} <= set(LABELS_V1)

    assert (
        operator.post(_model_url() + "aliases/", {"alias": "staging", "version": 2}, format="json").status_code == 200
    )
    second = predict_staging()

    assert second["version"] == 2
    assert len(second["outputs"]) == len(TEXTS)
    assert {output["label"] for output in second["outputs"]} <= set(LABELS_V2)
    detail = operator.get(_model_url()).json()
    assert (detail["aliases"], detail["latest_version"]) == ({"staging": 2}, 2)
    assert [(version["version"], version["aliases"]) for version in detail["versions"]] == [(2, ["staging"]), (1, [])]


@pytest.mark.django_db
def test_moving_production_needs_an_administrator(operator, admin, operator_user, sentiment, classifier_dir):
    _ready_version(sentiment, classifier_dir, operator_user)
    body = {"alias": "production", "version": 1}

    refused = operator.post(_model_url() + "aliases/", body, format="json")

    assert api_error(refused, 403, "permission_denied")["detail"] == "Moving the production alias needs the admin role."
    assert admin.post(_model_url() + "aliases/", body, format="json").status_code == 200
    # Without an alias or a version, predictions use production.
    prediction = operator.post(_model_url() + "predict/", {"inputs": ["fine"]}, format="json").json()
    assert (prediction["version"], prediction["alias"]) == (1, None)


@pytest.mark.django_db
def test_alias_to_a_missing_or_unready_version_is_refused(operator, operator_user, sentiment, classifier_dir):
    version_upload(model=sentiment, upload=io.BytesIO(pack_zip(classifier_dir)), actor=operator_user)
    url = _model_url() + "aliases/"

    missing = api_error(operator.post(url, {"alias": "staging", "version": 7}, format="json"), 400, "invalid")
    validating = operator.post(url, {"alias": "staging", "version": 1}, format="json")
    bad_name = api_error(operator.post(url, {"alias": "Not OK", "version": 1}, format="json"), 400, "invalid")

    assert missing["errors"] == {"version": ["sentiment has no version 7."]}
    assert api_error(validating, 409, "conflict")["detail"] == (
        "sentiment v1 is validating; only a ready version can take an alias."
    )
    assert bad_name["errors"]["alias"][0].startswith("Alias 'Not OK': Use 1 to 100 lowercase letters")


@pytest.mark.django_db
def test_more_inputs_than_the_synchronous_limit_is_413_naming_it(operator, operator_user, sentiment, classifier_dir):
    _ready_version(sentiment, classifier_dir, operator_user)

    response = operator.post(_model_url() + "predict/", {"inputs": ["hello"] * 65, "version": 1}, format="json")

    assert api_error(response, 413, "too_large")["detail"] == (
        "65 inputs; a synchronous prediction takes at most 64. Use an inference job for more."
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"inputs": "just one string", "version": 1}, 400, "The inputs must be a non-empty list of texts."),
        ({"inputs": [], "version": 1}, 400, "The inputs must be a non-empty list of texts."),
        ({"inputs": ["fine", 3], "version": 1}, 400, "Input 1 must be a non-empty text."),
        ({"inputs": ["fine"], "alias": "canary"}, 404, "sentiment has no alias 'canary'."),
        ({"inputs": ["fine"], "version": 9}, 404, "sentiment has no version 9."),
        ({"inputs": ["fine"], "version": 1, "alias": "staging"}, 400, "Give an alias or a version number, not both."),
    ],
    ids=["not-a-list", "empty", "not-a-string", "unknown-alias", "unknown-version", "both"],
)
def test_bad_prediction_requests_say_what_is_wrong(
    operator, operator_user, sentiment, classifier_dir, body, status, message
):
    _ready_version(sentiment, classifier_dir, operator_user)

    response = operator.post(_model_url() + "predict/", body, format="json")

    assert response.status_code == status, response.content
    assert response.json()["detail"].endswith(message)


@pytest.mark.django_db
def test_archived_version_keeps_no_alias_and_cannot_be_used(operator, operator_user, sentiment, classifier_dir):
    _ready_version(sentiment, classifier_dir, operator_user)
    operator.post(_model_url() + "aliases/", {"alias": "staging", "version": 1}, format="json")
    archive_url = _version_url(1) + "archive/"

    refused = operator.post(archive_url)
    assert api_error(refused, 409, "conflict")["detail"] == (
        "sentiment v1 is still the target of the alias(es) staging; move them first."
    )

    sentiment.aliases.all().delete()
    archived = operator.post(archive_url)
    assert archived.status_code == 200, archived.content
    assert archived.json()["archived_at"]
    response = operator.post(_model_url() + "predict/", {"inputs": ["fine"], "version": 1}, format="json")
    assert api_error(response, 409, "conflict")["detail"] == "sentiment v1 is archived and cannot be used."


# --- Bad artifacts and limits


@pytest.mark.django_db
@pytest.mark.parametrize("bad", BAD_ARTIFACTS, ids=[bad.name for bad in BAD_ARTIFACTS])
def test_bad_artifact_is_refused_with_its_reason_and_leaves_nothing(
    operator, sentiment, classifier_dir, registry_storage, bad
):
    registry_storage.REGISTRY_MAX_UNCOMPRESSED_MB = 10

    response = _upload(operator, bad.build(classifier_dir))

    body = api_error(response, bad.status, "invalid" if bad.status == 400 else "too_large")
    for keyword in bad.keywords:
        assert keyword.lower() in body["detail"].lower()
    if bad.status == 400:
        assert body["errors"] == {"artifact": [body["detail"].removeprefix("artifact: ")]}
    assert not ModelVersion.objects.exists()
    assert _stored_files(registry_storage.REGISTRY_DIR) == []
    assert _stored_files(registry_storage.MEDIA_ROOT) == []


@pytest.mark.django_db
def test_upload_over_the_size_limit_is_refused_from_its_content_length(operator, sentiment, registry_storage):
    registry_storage.REGISTRY_MAX_ARTIFACT_MB = 1
    data = os.urandom(2 * 1024 * 1024)

    response = _upload(operator, data)

    detail = api_error(response, 413, "too_large")["detail"]
    # The size comes from the request's Content-Length: refused before the body was read.
    assert detail.startswith("The upload (2,097,")
    assert detail.endswith("bytes) is larger than the limit of 1 MB.")
    assert not ModelVersion.objects.exists()
    assert _stored_files(registry_storage.REGISTRY_DIR) == []
    assert _stored_files(registry_storage.MEDIA_ROOT) == []


@pytest.mark.django_db
def test_upload_without_a_file_names_the_field(operator, sentiment):
    body = api_error(operator.post(_versions_url(), {}, format="multipart"), 400, "invalid")

    assert body["errors"] == {"artifact": ["No file was submitted."]}


# --- Who may upload, archive and predict


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["viewer_user", "compliance_user"])
def test_readers_cannot_upload_move_aliases_or_predict_but_read_versions(
    request, role, operator_user, sentiment, classifier_dir
):
    _ready_version(sentiment, classifier_dir, operator_user)
    reader = _client(request.getfixturevalue(role))

    refused = [
        _upload(reader, pack_zip(classifier_dir)),
        reader.post(_model_url() + "aliases/", {"alias": "staging", "version": 1}, format="json"),
        reader.post(_model_url() + "predict/", {"inputs": ["fine"], "version": 1}, format="json"),
        reader.post(_version_url(1) + "archive/"),
    ]

    for response in refused:
        api_error(response, 403, "permission_denied")
    assert ModelVersion.objects.count() == 1
    assert [version["version"] for version in reader.get(_versions_url()).json()["results"]] == [1]
    assert reader.get(_version_url(1)).json()["status"] == "ready"


@pytest.mark.django_db
def test_operator_cannot_upload_to_another_operators_model_but_admin_can(
    other_operator, admin, sentiment, classifier_dir, registry_storage
):
    response = _upload(_client(other_operator), pack_zip(classifier_dir))

    assert api_error(response, 403, "permission_denied")["detail"] == (
        "Only the owner of sentiment (an operator) or an administrator may change it."
    )
    assert not ModelVersion.objects.exists()
    assert _stored_files(registry_storage.MEDIA_ROOT) == []
    assert _upload(admin, pack_zip(classifier_dir)).status_code == 201


@pytest.mark.django_db
def test_any_operator_may_predict_with_a_model_they_do_not_own(
    other_operator, operator_user, sentiment, classifier_dir
):
    _ready_version(sentiment, classifier_dir, operator_user)

    response = _client(other_operator).post(
        _model_url() + "predict/", {"inputs": ["fine"], "version": 1}, format="json"
    )

    assert response.status_code == 200, response.content


@pytest.mark.django_db
def test_upload_just_over_the_limit_is_cut_off_by_the_bytes_received(operator, sentiment, registry_storage):
    registry_storage.REGISTRY_MAX_ARTIFACT_MB = 1
    # Within the allowance for multipart framing, so Content-Length alone does not refuse it: the bytes counted do.
    data = os.urandom(1024 * 1024 + 10_000)

    response = _upload(operator, data)

    assert api_error(response, 413, "too_large")["detail"] == ("The upload is larger than the limit of 1 MB.")
    assert not ModelVersion.objects.exists()


# --- Batch and evaluation jobs


def _job_file(rows: list[dict], *, fmt: str = "csv") -> SimpleUploadedFile:
    if fmt == "jsonl":
        content = "".join(json.dumps(row) + "\n" for row in rows)
    else:
        columns = list(rows[0])
        content = ",".join(columns) + "\n" + "".join(",".join(row[c] for c in columns) + "\n" for row in rows)
    return SimpleUploadedFile(f"inputs.{fmt}", content.encode(), content_type="text/plain")


def _submit_job(client: APIClient, rows: list[dict], *, fmt: str = "csv", **fields):
    body = {"file": _job_file(rows, fmt=fmt), "model": "sentiment", "version": 1, **fields}
    return client.post(JOBS_URL, body, format="multipart")


def _wait_for_job(client: APIClient, job_id: int) -> dict:
    deadline = time.monotonic() + 60
    job = client.get(f"{JOBS_URL}{job_id}/").json()
    while job["status"] in ("queued", "running", "cancelling") and time.monotonic() < deadline:
        time.sleep(0.05)
        job = client.get(f"{JOBS_URL}{job_id}/").json()
    return job


def _texts(count: int) -> list[dict]:
    return [{"text": f"{TEXTS[n % len(TEXTS)]} number {n}"} for n in range(count)]


def test_batch_job_runs_on_the_worker_and_its_results_download(celery_worker, operator, operator_user, classifier_dir):
    sentiment = model_register(owner=operator_user, name="sentiment", task="text-classification")
    _ready_version(sentiment, classifier_dir, operator_user)

    response = _submit_job(operator, _texts(300), name="nightly")

    assert response.status_code == 201, response.content
    created = response.json()
    assert response["Location"].endswith(f"{JOBS_URL}{created['id']}/")
    assert (created["name"], created["kind"], created["model"], created["version"]) == (
        "nightly",
        "batch",
        "sentiment",
        1,
    )
    assert (created["rows_total"], created["input_format"], created["owner"]) == (300, "csv", "oscar-operator")
    job = _wait_for_job(operator, created["id"])
    assert job["status"] == "completed", job["error"]
    assert job["rows_done"] == 300
    assert job["result_url"].endswith(f"{JOBS_URL}{job['id']}/result/")

    download = operator.get(job["result_url"], HTTP_ACCEPT="text/csv")

    assert download.status_code == 200
    assert download["Content-Type"].startswith("text/csv")
    assert download["Content-Disposition"] == f'attachment; filename="inference-job-{job["id"]}-results.csv"'
    results = list(csv.DictReader(io.StringIO(b"".join(download.streaming_content).decode())))
    assert len(results) == 300
    assert [row["text"] for row in results[:2]] == [row["text"] for row in _texts(2)]
    assert {row["predicted_label"] for row in results} <= set(LABELS_V1)


def test_evaluation_job_stores_its_metrics_on_the_version(celery_worker, operator, operator_user, classifier_dir):
    sentiment = model_register(owner=operator_user, name="sentiment", task="text-classification")
    _ready_version(sentiment, classifier_dir, operator_user)
    rows = [{"text": row["text"], "label": LABELS_V1[n % 2]} for n, row in enumerate(_texts(40))]

    created = _submit_job(operator, rows, fmt="jsonl").json()
    job = _wait_for_job(operator, created["id"])

    assert (created["kind"], job["status"]) == ("evaluation", "completed"), job["error"]
    assert 0 <= job["metrics"]["accuracy"] <= 1
    assert job["metrics"]["confusion_matrix"]["labels"] == list(LABELS_V1)
    evaluation = operator.get(_version_url(1)).json()["metrics"]["evaluation"]
    assert (evaluation["job"], evaluation["rows"], evaluation["accuracy"]) == (
        job["id"],
        40,
        job["metrics"]["accuracy"],
    )


@pytest.mark.django_db
def test_queued_job_has_no_results_yet_and_cancels_once(operator, operator_user, sentiment, classifier_dir):
    _ready_version(sentiment, classifier_dir, operator_user)
    job = _submit_job(operator, _texts(5)).json()
    url = f"{JOBS_URL}{job['id']}/"

    early = api_error(operator.get(url + "result/"), 409, "conflict")
    cancelled = operator.post(url + "cancel/")
    again = api_error(operator.post(url + "cancel/"), 409, "conflict")

    assert early["detail"] == f"Job #{job['id']} is queued; results exist only for completed jobs."
    assert cancelled.status_code == 200, cancelled.content
    assert cancelled.json()["status"] == "cancelled"
    assert again["detail"] == f"Job #{job['id']} is already cancelled; there is nothing to cancel."


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "rows", "status", "field", "message"),
    [
        ({"model": "nope"}, [{"text": "fine"}], 400, "model", "No model named 'nope'."),
        (
            {},
            [{"body": "fine"}],
            400,
            "file",
            "The CSV header has no text column (it names 'body'). The first row must name the columns: text, and "
            "optionally label.",
        ),
        ({"version": 4}, [{"text": "fine"}], 404, None, "sentiment has no version 4."),
    ],
    ids=["unknown-model", "no-text-column", "unknown-version"],
)
def test_job_that_cannot_run_is_refused_and_leaves_no_job(
    operator, operator_user, sentiment, classifier_dir, registry_storage, fields, rows, status, field, message
):
    _ready_version(sentiment, classifier_dir, operator_user)
    stored = _stored_files(registry_storage.MEDIA_ROOT)

    response = _submit_job(operator, rows, **fields)

    assert response.status_code == status, response.content
    body = response.json()
    assert body["detail"].endswith(message)
    if field:
        assert body["errors"][field] == [message]
    assert not InferenceJob.objects.exists()
    assert _stored_files(registry_storage.MEDIA_ROOT) == stored


@pytest.mark.django_db
def test_job_file_over_the_size_limit_is_413_naming_it(operator, operator_user, sentiment, registry_storage):
    registry_storage.REGISTRY_JOB_MAX_FILE_MB = 1

    response = _submit_job(operator, [{"text": "x" * 5000}] * 500)

    assert api_error(response, 413, "too_large")["detail"].endswith("bytes) is larger than the limit of 1 MB.")
    assert not InferenceJob.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["viewer_user", "compliance_user", "outsider_user"])
def test_only_operators_and_admins_run_jobs(request, role, operator_user, sentiment, classifier_dir):
    _ready_version(sentiment, classifier_dir, operator_user)

    response = _submit_job(_client(request.getfixturevalue(role)), _texts(3))

    assert api_error(response, 403, "permission_denied")["detail"] == (
        "Only operators and administrators may run inference jobs; viewers and compliance officers only read."
    )
    assert not InferenceJob.objects.exists()


@pytest.mark.django_db
def test_jobs_are_seen_by_their_owner_and_by_admins_and_viewers_only(
    request, operator, operator_user, other_operator, sentiment, classifier_dir
):
    _ready_version(sentiment, classifier_dir, operator_user)
    own = _submit_job(operator, _texts(3)).json()["id"]
    others = _submit_job(_client(other_operator), _texts(3)).json()["id"]

    def ids(client, **query) -> list[int]:
        response = client.get(JOBS_URL, query)
        assert response.status_code == 200, response.content
        return [job["id"] for job in response.json()["results"]]

    assert ids(operator) == [own]
    api_error(operator.get(f"{JOBS_URL}{others}/"), 404, "not_found")
    assert api_error(operator.post(f"{JOBS_URL}{others}/cancel/"), 404, "not_found")
    for reader in ("viewer_user", "admin_user"):
        assert ids(_client(request.getfixturevalue(reader))) == [others, own]
    assert ids(_client(request.getfixturevalue("viewer_user")), owner="olga-operator") == [others]
    outsider = _client(request.getfixturevalue("outsider_user"))
    assert ids(outsider) == []
    api_error(outsider.get(f"{JOBS_URL}{own}/"), 404, "not_found")
    assert ids(operator, status="queued", model="sentiment") == [own]
    assert ids(operator, status="completed") == []
    assert ids(operator, model="other") == []
