"""Batch inference and evaluation jobs: real worker and tiny model, progress on /ws/jobs/, cancel, bad files, roles."""

import csv
import io
import json
import time
from datetime import timedelta
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from transformers import AutoTokenizer

from apps.audit.models import AuditEvent
from apps.core.choices import Role
from apps.jobs.choices import FINISHED_STATUSES
from apps.jobs.consumers import JOB_NOT_VISIBLE_CLOSE_CODE
from apps.jobs.lifecycle import JobStateError, Outcome, jobs_finish, jobs_requeue_lost
from apps.registry.choices import InferenceKind
from apps.registry.inference import (
    INFERENCE_JOBS,
    inference_job_cancel,
    inference_job_create,
    inference_job_result,
    inference_job_run,
)
from apps.registry.loading import pipelines
from apps.registry.models import InferenceJob, ModelVersion, RegisteredModel
from apps.registry.services import RegistryError, model_register, version_directory, version_upload, version_validate
from project.asgi import application
from tests.core.test_live_events import ORIGIN, _session_cookie
from tests.factories import UserFactory
from tests.helpers import job_wait
from tests.registry_models import (
    SENTENCES,
    build_tiny_classifier,
    build_tiny_fill_mask,
    pack_zip,
)

pytestmark = pytest.mark.usefixtures("registry_storage")

LABELS = ("negative", "positive")


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory) -> Path:
    return build_tiny_classifier(tmp_path_factory.mktemp("classifier") / "model", labels=LABELS)


@pytest.fixture
def sentiment(operator_user) -> RegisteredModel:
    return model_register(owner=operator_user, name="sentiment", task="text-classification")


@pytest.fixture
def version(sentiment, classifier_dir, operator_user) -> ModelVersion:
    """A ready version validated in this process (tests that need no worker)."""
    version = version_upload(model=sentiment, upload=io.BytesIO(pack_zip(classifier_dir)), actor=operator_user)
    version_validate(version_id=version.pk)
    version.refresh_from_db()
    assert version.status == "ready", version.status_reason
    return version


@pytest.fixture
def worker_version(celery_worker, sentiment, classifier_dir, operator_user) -> ModelVersion:
    """A ready version uploaded through the service and validated by the worker."""
    version = version_upload(model=sentiment, upload=io.BytesIO(pack_zip(classifier_dir)), actor=operator_user)
    deadline = time.monotonic() + 60
    while version.status == "validating" and time.monotonic() < deadline:
        time.sleep(0.05)
        version.refresh_from_db()
    assert version.status == "ready", version.status_reason
    return version


@pytest.fixture
def other_operator(db):
    return UserFactory(username="olga-operator", roles=[Role.OPERATOR])


def _texts(count: int) -> list[str]:
    return [f"{SENTENCES[index % len(SENTENCES)]} number {index}" for index in range(count)]


def _csv(texts: list[str], labels: list[str] | None = None) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["text", "label"] if labels else ["text"])
    writer.writerows(zip(texts, labels, strict=True) if labels else ([text] for text in texts))
    return buffer.getvalue().encode()


def _jsonl(texts: list[str], labels: list[str]) -> bytes:
    return "".join(
        json.dumps({"text": text, "label": label}) + "\n" for text, label in zip(texts, labels, strict=True)
    ).encode()


def _upload(data: bytes, name: str = "rows.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="text/csv")


def _submit(owner, model, data: bytes, **options) -> InferenceJob:
    return inference_job_create(owner=owner, model=model, upload=_upload(data), number=1, **options)


def _result_rows(job: InferenceJob) -> tuple[list, str, str]:
    file, filename, content_type = inference_job_result(job)
    with file:
        text = file.read().decode()
    rows = (
        list(csv.DictReader(io.StringIO(text)))
        if filename.endswith(".csv")
        else list(map(json.loads, text.splitlines()))
    )
    return rows, filename, content_type


def _stored(root: Path, folder: str) -> list[Path]:
    return [path for path in (root / "registry" / folder).rglob("*") if path.is_file()]


# --- Running on the worker


def test_batch_job_over_a_thousand_rows_completes_with_one_result_row_each(worker_version, operator_user, sentiment):
    texts = _texts(1_200)

    job = _submit(operator_user, sentiment, _csv(texts), name="nightly")

    assert (job.kind, job.status, job.progress_total, job.input_format) == ("batch", "queued", 1_200, "csv")
    job_wait(job, FINISHED_STATUSES)
    assert job.status == "completed", job.error
    assert job.progress_done == 1_200
    assert (job.attempts, job.metrics["rows_per_second"] > 0) == (1, True)
    rows, filename, content_type = _result_rows(job)
    assert (filename, content_type) == (f"inference-job-{job.pk}-results.csv", "text/csv; charset=utf-8")
    assert len(rows) == 1_200
    assert list(rows[0]) == ["row", "text", "predicted_label", "score"]
    assert [row["text"] for row in rows] == texts
    assert [int(row["row"]) for row in rows] == list(range(1, 1_201))
    assert {row["predicted_label"] for row in rows} <= set(LABELS)
    assert all(0 <= float(row["score"]) <= 1 for row in rows)
    actions = AuditEvent.objects.filter(object_id=str(job.pk), action__startswith="registry.job.").order_by("pk")
    assert [event.action for event in actions] == ["registry.job.submitted", "registry.job.completed"]


def test_progress_and_status_of_a_job_stream_on_the_jobs_websocket(
    worker_version, operator_user, sentiment, client, registry_storage
):
    registry_storage.REGISTRY_JOB_BATCH_SIZE = 4  # enough batches to last over a second: progress in between
    communicator = WebsocketCommunicator(
        application, "/ws/jobs/", headers=[ORIGIN, _session_cookie(client, operator_user)]
    )

    async def scenario():
        connected, _ = await communicator.connect()
        assert connected
        await communicator.receive_json_from(timeout=5)  # the snapshot
        job = await sync_to_async(_submit)(operator_user, sentiment, _csv(_texts(3_000)))
        updates = []
        while not updates or updates[-1]["status"] not in ("completed", "failed", "cancelled"):
            message = await communicator.receive_json_from(timeout=30)
            if message["kind"] == "inference" and message["id"] == job.pk:
                updates.append(message)
        await communicator.disconnect()
        return updates

    updates = async_to_sync(scenario)()

    assert [update["status"] for update in updates[:2]] == ["queued", "running"]
    assert updates[-1]["status"] == "completed", updates[-1]["error"]
    assert {update["progress"]["total"] for update in updates} == {3_000}
    done = [update["progress"]["done"] for update in updates]
    assert done == sorted(done)
    assert (done[0], done[-1]) == (0, 3_000)
    assert any(0 < count < 3_000 for count in done), f"no progress between start and end: {done}"


def test_jobs_websocket_snapshot_includes_unfinished_inference_jobs(version, operator_user, sentiment, client):
    job = _submit(operator_user, sentiment, _csv(_texts(5)))
    communicator = WebsocketCommunicator(
        application, "/ws/jobs/", headers=[ORIGIN, _session_cookie(client, operator_user)]
    )

    async def scenario():
        connected, _ = await communicator.connect()
        assert connected
        snapshot = await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()
        return snapshot

    snapshot = async_to_sync(scenario)()

    inference = [update for update in snapshot["jobs"] if update["kind"] == "inference"]
    assert [(update["id"], update["status"]) for update in inference] == [(job.pk, "queued")]
    assert inference[0]["progress"] == {"done": 0, "total": 5}


def test_single_inference_job_stream_sends_the_job_then_its_updates_and_refuses_others(
    transactional_db, version, operator_user, other_operator, sentiment
):
    job = _submit(operator_user, sentiment, _csv(_texts(5)), name="watched")
    owner, other = (
        WebsocketCommunicator(
            application, f"/ws/jobs/inference/{job.pk}/", headers=[ORIGIN, _session_cookie(Client(), user)]
        )
        for user in (operator_user, other_operator)
    )

    async def watch():
        connected, _ = await owner.connect()
        assert connected
        first = await owner.receive_json_from(timeout=5)
        await sync_to_async(inference_job_cancel)(job=job, actor=operator_user)
        update = await owner.receive_json_from(timeout=5)
        await owner.disconnect()
        return first, update

    async def refused():
        result = await other.connect()
        await other.disconnect()
        return result

    first, update = async_to_sync(watch)()

    assert (first["kind"], first["id"], first["name"], first["status"]) == ("inference", job.pk, "watched", "queued")
    assert (first["progress"], first["attempts"]) == ({"done": 0, "total": 5}, 0)
    assert (update["id"], update["status"], update["error"]) == (
        job.pk,
        "cancelled",
        "Cancelled by oscar-operator before it ran.",
    )
    assert async_to_sync(refused)() == (False, JOB_NOT_VISIBLE_CLOSE_CODE)


def test_evaluation_job_stores_accuracy_macro_f1_and_confusion_matrix_on_job_and_version(
    worker_version, operator_user, sentiment
):
    texts = _texts(1_000)
    labels = [LABELS[index % 2] if index % 10 else "neutral" for index in range(1_000)]

    job = _submit(operator_user, sentiment, _csv(texts, labels))

    assert job.kind == InferenceKind.EVALUATION
    job_wait(job, FINISHED_STATUSES)
    assert job.status == "completed", job.error
    rows, _, _ = _result_rows(job)
    assert list(rows[0]) == ["row", "text", "label", "predicted_label", "score"]
    assert [row["label"] for row in rows] == labels
    correct = sum(row["label"] == row["predicted_label"] for row in rows)
    matrix = job.metrics["confusion_matrix"]
    assert matrix["labels"] == ["negative", "positive", "neutral"]
    for true_index, true_label in enumerate(matrix["labels"]):
        for guess_index, guess in enumerate(matrix["labels"]):
            expected = sum(row["label"] == true_label and row["predicted_label"] == guess for row in rows)
            assert matrix["matrix"][true_index][guess_index] == expected, (true_label, guess)
    assert job.metrics["accuracy"] == pytest.approx(correct / 1_000)
    assert 0 <= job.metrics["macro_f1"] <= 1
    assert job.metrics["rows"] == 1_000
    worker_version.refresh_from_db()
    evaluation = worker_version.metrics["evaluation"]
    assert evaluation["job"] == job.pk
    assert {key: evaluation[key] for key in ("rows", "accuracy", "macro_f1", "confusion_matrix")} == {
        key: job.metrics[key] for key in ("rows", "accuracy", "macro_f1", "confusion_matrix")
    }


def test_running_job_cancelled_stops_between_batches_and_keeps_no_results(
    worker_version, operator_user, sentiment, registry_storage
):
    registry_storage.REGISTRY_JOB_BATCH_SIZE = 5
    job = _submit(operator_user, sentiment, _csv(_texts(20_000)))
    deadline = time.monotonic() + 30
    while job.progress_done == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
        job.refresh_from_db()
    assert job.status == "running"

    inference_job_cancel(job=job, actor=operator_user)

    assert InferenceJob.objects.get(pk=job.pk).status in ("cancelling", "cancelled")
    job_wait(job, FINISHED_STATUSES, timeout=10)
    assert job.status == "cancelled"
    assert job.progress_done < 20_000
    assert job.error.startswith("Cancelled while running, after")
    assert not job.result_file
    assert _stored(registry_storage.MEDIA_ROOT, "results") == []
    with pytest.raises(RegistryError) as refused:
        inference_job_result(job)
    assert refused.value.status == 409


# --- Running in this process (the service the task calls)


def test_jsonl_evaluation_gives_jsonl_results(version, operator_user, sentiment):
    texts = _texts(30)
    job = _submit(operator_user, sentiment, _jsonl(texts, [LABELS[index % 2] for index in range(30)]))

    message = inference_job_run(job_id=job.pk, task_id="task-1", worker="here")

    job.refresh_from_db()
    assert (job.status, job.input_format, job.kind) == ("completed", "jsonl", "evaluation"), message
    rows, filename, content_type = _result_rows(job)
    assert (filename, content_type) == (f"inference-job-{job.pk}-results.jsonl", "application/x-ndjson; charset=utf-8")
    assert [set(row) for row in rows] == [{"row", "text", "label", "predicted_label", "score"}] * 30
    assert [row["text"] for row in rows] == texts


@pytest.fixture
def embedder(operator_user, tmp_path) -> RegisteredModel:
    """A feature-extraction model with a ready version 1 (a masked LM; its positions stop at 64 tokens)."""
    model = model_register(owner=operator_user, name="embedder", task="feature-extraction")
    folder = build_tiny_fill_mask(tmp_path / "embedder")
    ready = version_upload(model=model, upload=io.BytesIO(pack_zip(folder)), actor=operator_user)
    version_validate(version_id=ready.pk)
    ready.refresh_from_db()
    assert ready.status == "ready", ready.status_reason
    return model


def test_job_of_another_task_writes_the_pipeline_output_as_json(operator_user, embedder, tmp_path):
    texts = ["the queue is stuck again", "i love it"]
    tokens = [len(ids) for ids in AutoTokenizer.from_pretrained(tmp_path / "embedder")(texts)["input_ids"]]
    job = _submit(operator_user, embedder, _csv(texts))

    inference_job_run(job_id=job.pk, task_id="task-1", worker="here")

    job.refresh_from_db()
    assert job.status == "completed", job.error
    rows, _, _ = _result_rows(job)
    assert list(rows[0]) == ["row", "text", "output"]
    outputs = [json.loads(row["output"]) for row in rows]
    # One vector of the hidden size per token of its own text: no padding from a shared batch.
    assert [len(output[0]) for output in outputs] == tokens
    assert tokens[0] != tokens[1]
    assert {len(vector) for output in outputs for vector in output[0]} == {32}


def test_model_that_fails_on_a_row_fails_the_job_naming_the_rows(operator_user, embedder, registry_storage):
    registry_storage.REGISTRY_JOB_BATCH_SIZE = 2
    job = _submit(operator_user, embedder, _csv(["fine", "fine too", "fine again", "word " * 100]))

    inference_job_run(job_id=job.pk, task_id="task-1", worker="here")

    job.refresh_from_db()
    assert job.status == "failed"
    assert job.error.startswith("The model failed on rows 3 to 4: RuntimeError:")
    assert job.progress_done == 2
    assert not job.result_file
    assert _stored(registry_storage.MEDIA_ROOT, "results") == []


def test_model_that_cannot_be_loaded_fails_the_job_with_the_reason(version, operator_user, sentiment):
    job = _submit(operator_user, sentiment, _csv(_texts(10)))
    (version_directory(version) / "model.safetensors").write_bytes(b"not weights")
    pipelines.clear()

    inference_job_run(job_id=job.pk, task_id="task-1", worker="here")

    job.refresh_from_db()
    assert job.status == "failed"
    assert job.error.startswith("The model sentiment v1 could not be loaded:")
    assert AuditEvent.objects.filter(action="registry.job.failed", object_id=str(job.pk)).exists()


def test_redelivered_job_runs_again_then_fails_after_max_attempts(version, operator_user, sentiment, settings):
    settings.REGISTRY_MAX_ATTEMPTS = 2
    job = _submit(operator_user, sentiment, _csv(_texts(10)))
    InferenceJob.objects.filter(pk=job.pk).update(
        status="running", celery_task_id="task-1", attempts=1, progress_done=4
    )

    inference_job_run(job_id=job.pk, task_id="task-1", worker="here")

    job.refresh_from_db()
    assert (job.status, job.attempts, job.progress_done) == ("completed", 2, 10)
    InferenceJob.objects.filter(pk=job.pk).update(status="running")

    inference_job_run(job_id=job.pk, task_id="task-1", worker="here")

    job.refresh_from_db()
    assert job.status == "failed"
    assert job.max_attempts == 2
    assert job.error.startswith("Its worker was lost during each of its 2 runs (at most 2 are allowed)")


def test_job_running_under_another_task_is_not_run_twice(version, operator_user, sentiment):
    job = _submit(operator_user, sentiment, _csv(_texts(10)))
    InferenceJob.objects.filter(pk=job.pk).update(status="running", celery_task_id="task-1", attempts=1)

    message = inference_job_run(job_id=job.pk, task_id="task-2", worker="here")

    assert message == f"Job {job.pk} is running; not run."
    assert InferenceJob.objects.get(pk=job.pk).attempts == 1


def test_job_past_its_timeout_stops_between_batches_and_fails_naming_the_limit(
    version, operator_user, sentiment, settings
):
    settings.REGISTRY_JOB_TIMEOUT = 0
    job = _submit(operator_user, sentiment, _csv(_texts(10)))

    inference_job_run(job_id=job.pk, task_id="task-1", worker="here")

    job.refresh_from_db()
    assert (job.status, job.error) == ("failed", "Timed out: a job may run for at most 0 seconds; 0 of 10 rows done.")


def test_job_of_a_lost_worker_is_requeued_and_runs_again_on_another(worker_version, operator_user, sentiment):
    job = _submit(operator_user, sentiment, _csv(_texts(10)))
    job_wait(job, FINISHED_STATUSES)
    long_ago = timezone.now() - timedelta(minutes=5)
    lost = dict(status="running", celery_task_id="lost", attempts=1, heartbeat_at=long_ago, result_file="")
    InferenceJob.objects.filter(pk=job.pk).update(**lost, progress_done=4)

    assert jobs_requeue_lost() == {"inference": 1}

    job_wait(job, FINISHED_STATUSES)
    assert (job.status, job.attempts, job.progress_done) == ("completed", 2, 10), job.error
    assert job.result_file
    actions = AuditEvent.objects.filter(object_id=str(job.pk), action__startswith="registry.job.").order_by("pk")
    assert [event.action for event in actions][-2:] == ["registry.job.requeued", "registry.job.completed"]


def test_lost_job_that_used_its_attempts_fails_and_a_lost_cancelling_job_ends_cancelled(
    version, operator_user, sentiment, settings
):
    settings.REGISTRY_MAX_ATTEMPTS = 2
    long_ago = timezone.now() - timedelta(minutes=5)
    running, cancelling, beating = (_submit(operator_user, sentiment, _csv(_texts(3))) for _ in range(3))
    InferenceJob.objects.filter(pk=running.pk).update(status="running", attempts=2, heartbeat_at=long_ago)
    InferenceJob.objects.filter(pk=cancelling.pk).update(status="cancelling", attempts=1, heartbeat_at=long_ago)
    InferenceJob.objects.filter(pk=beating.pk).update(status="running", attempts=1, heartbeat_at=timezone.now())

    assert jobs_requeue_lost() == {"inference": 2}

    statuses = dict(InferenceJob.objects.values_list("pk", "status"))
    assert (statuses[running.pk], statuses[cancelling.pk], statuses[beating.pk]) == ("failed", "cancelled", "running")
    running.refresh_from_db()
    assert running.error.startswith("Its worker was lost during each of its 2 runs")


def test_evaluation_completed_while_being_cancelled_ends_cancelled_without_results_or_version_metrics(
    version, operator_user, sentiment
):
    job = _submit(operator_user, sentiment, _csv(_texts(2), ["positive", "negative"]))
    InferenceJob.objects.filter(pk=job.pk).update(status="cancelling", attempts=1)
    figures = {"rows": 2, "accuracy": 1.0, "macro_f1": 1.0, "confusion_matrix": {"labels": [], "matrix": []}}

    jobs_finish(INFERENCE_JOBS, {job.pk: Outcome("completed", fields={"metrics": figures, "result_file": "x.csv"})})

    job.refresh_from_db()
    assert (job.status, job.error, job.metrics) == ("cancelled", "Cancelled while running.", {})
    assert not job.result_file
    version.refresh_from_db()
    assert "evaluation" not in version.metrics


# --- Cancel


def test_queued_job_cancelled_at_once_is_then_skipped_by_the_worker(version, operator_user, sentiment):
    job = _submit(operator_user, sentiment, _csv(_texts(10)))

    inference_job_cancel(job=job, actor=operator_user)

    job.refresh_from_db()
    assert (job.status, job.error) == ("cancelled", "Cancelled by oscar-operator before it ran.")
    assert inference_job_run(job_id=job.pk, task_id="task-1", worker="here") == f"Job {job.pk} is cancelled; not run."
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("cancelled", 0)
    event = AuditEvent.objects.get(action="registry.job.cancelled", object_id=str(job.pk))
    assert event.actor_username == "oscar-operator"


def test_finished_job_cannot_be_cancelled(version, operator_user, sentiment):
    job = _submit(operator_user, sentiment, _csv(_texts(10)))
    inference_job_run(job_id=job.pk, task_id="task-1", worker="here")

    with pytest.raises(JobStateError) as refused:
        inference_job_cancel(job=job, actor=operator_user)

    assert refused.value.status == 409
    assert refused.value.message == f"Job #{job.pk} is already completed; there is nothing to cancel."


def test_operator_cannot_cancel_another_operators_job_but_an_admin_can(
    version, operator_user, other_operator, admin_user, sentiment
):
    job = _submit(operator_user, sentiment, _csv(_texts(10)))

    with pytest.raises(RegistryError) as refused:
        inference_job_cancel(job=job, actor=other_operator)

    assert refused.value.status == 403
    assert InferenceJob.objects.get(pk=job.pk).status == "queued"
    assert inference_job_cancel(job=job, actor=admin_user).status == "cancelled"


def test_result_of_an_unfinished_job_is_409(version, operator_user, sentiment):
    job = _submit(operator_user, sentiment, _csv(_texts(10)))

    with pytest.raises(RegistryError) as refused:
        inference_job_result(job)

    assert (refused.value.status, refused.value.message) == (
        409,
        f"Job #{job.pk} is queued; results exist only for completed jobs.",
    )


# --- Who may submit, and what


@pytest.mark.parametrize("role", ["viewer_user", "compliance_user", "outsider_user"])
def test_readers_cannot_create_jobs(request, role, version, sentiment, registry_storage):
    with pytest.raises(RegistryError) as refused:
        _submit(request.getfixturevalue(role), sentiment, _csv(_texts(3)))

    assert refused.value.status == 403
    assert not InferenceJob.objects.exists()
    assert _stored(registry_storage.MEDIA_ROOT, "inputs") == []


def test_any_operator_may_run_a_model_they_do_not_own_by_alias(version, other_operator, admin_user, sentiment):
    from apps.registry.services import alias_move

    alias_move(model=sentiment, name="production", version=version, actor=admin_user)

    job = inference_job_create(owner=other_operator, model=sentiment, upload=_upload(_csv(_texts(3))))

    assert (job.owner, job.version, job.status) == (other_operator, version, "queued")


def _too_many_rows(settings):
    settings.REGISTRY_JOB_MAX_ROWS = 3
    return _csv(_texts(4))


def _too_large(settings):
    settings.REGISTRY_JOB_MAX_FILE_MB = 1
    return _csv(_texts(40_000))


@pytest.mark.parametrize(
    ("data", "status", "message"),
    [
        (b"", 400, "The file is empty."),
        (b"\n  \n", 400, "The file is empty."),
        (b"sentence,label\nhello,positive\n", 400, "The CSV header has no text column (it names 'sentence', 'label')."),
        (b"text,label\n", 400, "The file has a header but no rows."),
        (b"text,label\nthe queue,positive\n,negative\n", 400, "Row 2 (line 3) has no text."),
        (b'{"text": "fine"}\n\n{"label": "positive"}\n', 400, "Row 2 (line 3) has no text."),
        (b'{"text": "fine"}\n{"text": \n', 400, "Line 2 is not valid JSON"),
        ("text\ncafé au lait\n".encode("latin-1"), 400, "The file is not UTF-8 text: line 2 has the byte 0xe9."),
        (_too_many_rows, 400, "The file has more than 3 rows, the limit."),
        (_too_large, 413, "MB; the limit is 1 MB."),
    ],
    ids=[
        "empty",
        "blank lines",
        "no text column",
        "header only",
        "csv row without text",
        "jsonl row without text",
        "bad json",
        "not utf-8",
        "too many rows",
        "too large",
    ],
)
def test_bad_input_file_is_refused_naming_the_problem_and_leaves_no_job(
    version, operator_user, sentiment, registry_storage, data, status, message
):
    data = data(registry_storage) if callable(data) else data

    with pytest.raises(RegistryError) as refused:
        _submit(operator_user, sentiment, data)

    assert (refused.value.status, refused.value.field) == (status, "file")
    assert message in refused.value.message
    assert not InferenceJob.objects.exists()
    assert _stored(registry_storage.MEDIA_ROOT, "inputs") == []


def test_labels_on_every_row_need_a_text_classification_model(operator_user, embedder):
    with pytest.raises(RegistryError) as refused:
        _submit(operator_user, embedder, _csv(["the queue works"], ["positive"]))

    assert refused.value.status == 400
    assert "evaluation needs a text-classification model and embedder is feature-extraction" in refused.value.message
    assert not InferenceJob.objects.exists()


def test_some_rows_labelled_makes_a_batch_job_keeping_the_labels_given(version, operator_user, sentiment):
    job = _submit(operator_user, sentiment, b"text,label\nthe queue is stuck,negative\ni love the dashboard,\n")
    assert job.kind == InferenceKind.BATCH

    inference_job_run(job_id=job.pk, task_id="task-1", worker="here")

    job.refresh_from_db()
    rows, _, _ = _result_rows(job)
    assert [(row["row"], row["label"]) for row in rows] == [("1", "negative"), ("2", "")]
    assert set(job.metrics) == {"seconds", "rows_per_second"}


def test_metrics_count_predictions_latency_loaded_pipelines_and_jobs(version, operator_user, sentiment, client):
    from apps.registry.services import predict
    from tests.core.test_metrics import _sample

    client.force_login(operator_user)

    def sample(name: str, **labels) -> float:
        # Counters of this process add up over the session: compare before and after.
        return _sample(client.get("/metrics").content.decode(), name, **labels) or 0

    before = {
        "predictions": sample("registry_predictions_total", model="sentiment"),
        "latency": sample("registry_prediction_latency_seconds_count"),
        "jobs": sample("registry_jobs_total", status="completed"),
    }
    predict(model=sentiment, inputs=["fine", "broken", "works"], actor=operator_user, number=version.version)
    job = _submit(operator_user, sentiment, _csv(_texts(10)))
    inference_job_run(job_id=job.pk, task_id="metrics-test", worker="test")

    assert sample("registry_predictions_total", model="sentiment") - before["predictions"] == 3
    assert sample("registry_prediction_latency_seconds_count") - before["latency"] == 1
    assert sample("registry_jobs_total", status="completed") - before["jobs"] == 1
    assert sample("registry_loaded_pipelines") >= 1


@pytest.mark.parametrize("role", ["viewer_user", "compliance_user", "outsider_user"])
def test_readers_cannot_predict_whatever_calls_the_service(request, role, version, sentiment):
    from apps.registry.services import predict

    with pytest.raises(RegistryError) as refused:
        predict(model=sentiment, inputs=["fine"], actor=request.getfixturevalue(role), number=version.version)

    assert refused.value.status == 403
