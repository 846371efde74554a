"""Batch inference and evaluation jobs: a CSV or JSONL file of texts run through a model version on a worker.

Every transition (submitted, running, completed, failed, cancelled) is audited and published on /ws/jobs/
with ``kind: "inference"`` and the rows done so far.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from itertools import chain, islice

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.utils import timezone

from apps.audit.choices import Outcome
from apps.audit.services import event_record
from apps.core.choices import Role
from apps.core.csv_cells import SafeCsvWriter
from apps.core.permissions import WRITE_ROLES, has_role
from apps.core.queueing import QueueUnavailable, enqueue_on_commit
from apps.core.services import job_updates_publish

from . import selectors, services
from .artifacts import ArtifactError
from .choices import FINISHED_INFERENCE_STATUSES, InferenceKind, InferenceStatus, ModelTask
from .loading import ModelLoadError, pipelines
from .metrics import REGISTRY_JOBS
from .models import InferenceJob, ModelVersion, RegisteredModel
from .services import RegistryError

MAX_NAME_LENGTH = 200
PROGRESS_INTERVAL_SECONDS = 0.5
ACTIVE_STATUSES = (InferenceStatus.RUNNING, InferenceStatus.CANCELLING)
# Tasks whose per-text outputs ignore padding (feature extraction would return the padded positions too,
# generation would continue after them), so texts can share one padded forward pass.
PADDING_SAFE_TASKS = (ModelTask.TEXT_CLASSIFICATION, ModelTask.TOKEN_CLASSIFICATION, ModelTask.FILL_MASK)
RESULT_CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson; charset=utf-8"}


def _max_line_bytes() -> int:
    # A text of REGISTRY_MAX_INPUT_CHARS characters takes up to 12 bytes per character as JSON escapes;
    # other columns get room too. Bounding lines keeps reading a file without newlines cheap.
    return max(2**20, 12 * settings.REGISTRY_MAX_INPUT_CHARS + 2**16)


# --- Reading input files


@dataclass(frozen=True)
class InputRow:
    number: int  # 1-based, header not counted
    text: str
    label: str | None


class InputRows:
    """The rows of a CSV file (a header naming a ``text`` column, optional ``label``) or of a JSONL file
    (objects with ``"text"``, optional ``"label"``), read line by line in constant memory.

    JSONL when the first non-blank line starts with ``{``, CSV otherwise. Reading raises RegistryError (400)
    naming the row or line at fault.
    """

    def __init__(self, file):
        self.line = 0
        lines = self._lines(file)
        first = next((line for line in lines if line.strip()), None)
        if first is None:
            raise RegistryError(
                "The file is empty. Upload a CSV file with a header row naming a text column (and optionally "
                'label), or a JSONL file of objects with "text" (and optionally "label").',
                field="file",
            )
        lines = chain([first], lines)
        self.format = "jsonl" if first.lstrip().startswith("{") else "csv"
        self.has_label_column = False
        if self.format == "csv":
            self._reader = csv.reader(lines)
            header = [name.strip().lower() for name in self._csv_next()]
            if "text" not in header:
                found = ", ".join(repr(name) for name in header)
                raise RegistryError(
                    f"The CSV header has no text column (it names {found}). The first row must name the columns: "
                    "text, and optionally label.",
                    field="file",
                )
            self._text_at = header.index("text")
            self._label_at = header.index("label") if "label" in header else None
            self.has_label_column = self._label_at is not None
        else:
            self._jsonl_lines = lines

    def _lines(self, file) -> Iterator[str]:
        limit = _max_line_bytes()
        file.seek(0)
        while raw := file.readline(limit + 1):
            self.line += 1
            if len(raw) > limit:
                raise RegistryError(
                    f"Line {self.line} is longer than {limit:,} bytes; rows are limited to "
                    f"{settings.REGISTRY_MAX_INPUT_CHARS:,} characters of text (REGISTRY_MAX_INPUT_CHARS).",
                    field="file",
                )
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise RegistryError(
                    f"The file is not UTF-8 text: line {self.line} has the byte 0x{raw[exc.start]:02x}. "
                    "Save it as UTF-8 and upload it again.",
                    field="file",
                ) from None
            yield line.removeprefix("\ufeff") if self.line == 1 else line

    def _csv_next(self) -> list[str]:
        try:
            return next(self._reader)
        except csv.Error as exc:
            raise RegistryError(f"The CSV file cannot be read at line {self.line}: {exc}.", field="file") from None

    def __iter__(self) -> Iterator[InputRow]:
        return self._csv_rows() if self.format == "csv" else self._jsonl_rows()

    def _csv_rows(self) -> Iterator[InputRow]:
        number = 0
        while True:
            try:
                cells = self._csv_next()
            except StopIteration:
                return
            if not any(cell.strip() for cell in cells):
                continue
            number += 1
            text = cells[self._text_at] if self._text_at < len(cells) else ""
            label_at = self._label_at
            label = cells[label_at] if label_at is not None and label_at < len(cells) else ""
            yield self._row(number, text, label)

    def _jsonl_rows(self) -> Iterator[InputRow]:
        number = 0
        for line in self._jsonl_lines:
            if not line.strip():
                continue
            number += 1
            try:
                item = json.loads(line)
            except ValueError as exc:
                message = getattr(exc, "msg", str(exc))
                raise RegistryError(f"Line {self.line} is not valid JSON: {message}.", field="file") from None
            if not isinstance(item, dict):
                raise RegistryError(
                    f'Line {self.line} is not a JSON object; each line must look like {{"text": "…"}}.', field="file"
                )
            label = item.get("label")
            if label is not None and not isinstance(label, str | int):
                raise RegistryError(f"Row {number} (line {self.line}): the label must be a string.", field="file")
            yield self._row(number, item.get("text"), "" if label is None else str(label))

    def _row(self, number: int, text, label: str) -> InputRow:
        if not isinstance(text, str) or not text.strip():
            raise RegistryError(f"Row {number} (line {self.line}) has no text.", field="file")
        limit = settings.REGISTRY_MAX_INPUT_CHARS
        if len(text) > limit:
            raise RegistryError(
                f"Row {number} (line {self.line}) has {len(text):,} characters of text; the limit is {limit:,} "
                "(REGISTRY_MAX_INPUT_CHARS).",
                field="file",
            )
        return InputRow(number, text, label.strip() or None)


# --- Permissions


def inference_job_may_change(user, job: InferenceJob) -> bool:
    """Cancel: the job's owner (with a writing role) or an administrator."""
    return has_role(user, Role.ADMIN) or (job.owner_id == user.pk and has_role(user, *WRITE_ROLES))


# --- Submit


def inference_job_create(
    *, owner, model: RegisteredModel, upload, alias: str | None = None, number: int | None = None, name: str = ""
) -> InferenceJob:
    """Check an uploaded CSV/JSONL file, store it and queue a batch job (an evaluation when every row has a label).

    Refusals (RegistryError 400, 403, 404, 409, 413) leave no job and no file.
    """
    if not has_role(owner, *WRITE_ROLES):
        raise RegistryError("Only operators and administrators may run inference jobs.", status=403)
    if len(name) > MAX_NAME_LENGTH:
        raise RegistryError(f"The name is {len(name)} characters; the limit is {MAX_NAME_LENGTH}.", field="name")
    version = services.version_resolve(model=model, alias=alias, number=number)
    limit_mb = settings.REGISTRY_JOB_MAX_FILE_MB
    if _size(upload) > limit_mb * 2**20:
        raise RegistryError(
            f"The file is {_size(upload) / 2**20:,.1f} MB; the limit is {limit_mb:,} MB (REGISTRY_JOB_MAX_FILE_MB).",
            status=413,
            field="file",
        )
    rows = InputRows(upload)
    total, labelled = _count(rows)
    kind = InferenceKind.EVALUATION if labelled == total else InferenceKind.BATCH
    if kind == InferenceKind.EVALUATION and model.task != ModelTask.TEXT_CLASSIFICATION:
        raise RegistryError(
            f"Every row has a label, but evaluation needs a text-classification model and {model.name} is "
            f"{model.task}. Remove the labels to run a batch job.",
            field="file",
        )
    job = InferenceJob(owner=owner, version=version, kind=kind, name=name, input_format=rows.format, rows_total=total)
    stored = ""
    try:
        upload.seek(0)
        job.input_file.save(f"{uuid.uuid4().hex}.{rows.format}", File(upload), save=False)
        stored = job.input_file.name
        with transaction.atomic():
            job.save()
            event_record(
                action="registry.job.submitted",
                actor=owner,
                obj=job,
                changes={"kind": kind, "rows": total, "model": model.name, "version": version.version},
            )
            # Announced before a worker can take it, so "queued" never arrives after "running".
            transaction.on_commit(lambda: _publish(job))
            enqueue_on_commit(
                lambda: _job_enqueue(job.pk), refused=partial(_job_not_queued, job.pk), what=f"job #{job.pk}"
            )
    except QueueUnavailable:
        raise  # the job was committed (and marked failed): its input file stays with it
    except BaseException:
        if stored:
            InferenceJob.input_file.field.storage.delete(stored)
        raise
    return job


def _size(upload) -> int:
    if getattr(upload, "size", None) is not None:
        return upload.size
    upload.seek(0, os.SEEK_END)
    return upload.tell()


def _count(rows: InputRows) -> tuple[int, int]:
    """Rows and labelled rows, refusing more than REGISTRY_JOB_MAX_ROWS rows and files without any."""
    limit = settings.REGISTRY_JOB_MAX_ROWS
    total = labelled = 0
    for row in rows:
        total += 1
        if total > limit:
            raise RegistryError(
                f"The file has more than {limit:,} rows; the limit is {limit:,} (REGISTRY_JOB_MAX_ROWS). "
                "Split it into several jobs.",
                field="file",
            )
        labelled += row.label is not None
    if not total:
        raise RegistryError("The file has a header but no rows.", field="file")
    return total, labelled


def _job_enqueue(job_id: int) -> None:
    from .tasks import run_inference_job  # tasks import this module

    run_inference_job.delay(job_id)


def _job_not_queued(job_id: int, reason: str) -> None:
    """Fail the job if still queued after the broker refused its message: no worker would ever take it."""
    with transaction.atomic():
        job = _locked(job_id)
        if job is not None and job.status == InferenceStatus.QUEUED:
            _finish(job, InferenceStatus.FAILED, f"Not run: {reason}. Submit it again.")


# --- Cancel


def inference_job_cancel(*, job: InferenceJob, actor) -> InferenceJob:
    """Cancel a queued job at once; ask the worker to stop a running one (it stops after its current batch)."""
    if not inference_job_may_change(actor, job):
        raise RegistryError("Only the job's owner (an operator) or an administrator may cancel it.", status=403)
    with transaction.atomic():
        job = _locked(job.pk)
        if job.status in FINISHED_INFERENCE_STATUSES:
            raise RegistryError(f"Job #{job.pk} is already {job.status}; there is nothing to cancel.", status=409)
        if job.status == InferenceStatus.CANCELLING:
            return job
        if job.status == InferenceStatus.QUEUED:
            return _finish(job, InferenceStatus.CANCELLED, f"Cancelled by {actor.get_username()} before it ran.", actor)
        job.status = InferenceStatus.CANCELLING
        job.save(update_fields=["status", "updated_at"])
        event_record(
            action="registry.job.cancelled",
            actor=actor,
            obj=job,
            changes={"status": [InferenceStatus.RUNNING, InferenceStatus.CANCELLING]},
        )
        transaction.on_commit(lambda: _publish(job))
    return job


# --- Running (called by the registry.run_inference_job task)


def inference_job_run(*, job_id: int, task_id: str, worker: str) -> str:
    """Run a queued job batch by batch, writing its results file; returns a summary for the task result.

    A message delivered again after its worker died finds its job running under its own task id:
    the job runs again from the start, or fails after REGISTRY_MAX_ATTEMPTS.
    """
    job, refusal = _claim(job_id, task_id, worker)
    if job is None:
        return refusal
    try:
        return _execute(job)
    except SoftTimeLimitExceeded:
        return _end(
            job,
            InferenceStatus.FAILED,
            f"Stopped by the task time limit after {job.rows_done:,} of {job.rows_total:,} rows "
            f"(CELERY_TASK_SOFT_TIME_LIMIT = {settings.CELERY_TASK_SOFT_TIME_LIMIT} s).",
        )


def _claim(job_id: int, task_id: str, worker: str) -> tuple[InferenceJob | None, str]:
    with transaction.atomic():
        job = _locked(job_id)
        if job is None:
            return None, f"Job {job_id} no longer exists."
        redelivered = job.status in ACTIVE_STATUSES and job.celery_task_id == task_id
        if redelivered and job.status == InferenceStatus.CANCELLING:
            _finish(job, InferenceStatus.CANCELLED, "Cancelled; its worker stopped before it finished.")
            return None, f"Job {job_id} cancelled."
        if redelivered and job.attempts >= settings.REGISTRY_MAX_ATTEMPTS:
            _finish(
                job,
                InferenceStatus.FAILED,
                f"The worker running this job was lost {job.attempts} times "
                f"(REGISTRY_MAX_ATTEMPTS = {settings.REGISTRY_MAX_ATTEMPTS}); not trying again.",
            )
            return None, f"Job {job_id} failed: worker lost too often."
        if job.status != InferenceStatus.QUEUED and not redelivered:
            return None, f"Job {job_id} is {job.status}; not run."
        job.status, job.started_at, job.finished_at = InferenceStatus.RUNNING, timezone.now(), None
        job.attempts += 1
        job.worker, job.celery_task_id = worker[:200], task_id or ""
        job.rows_done, job.error = 0, ""
        job.save(
            update_fields=[
                "status", "started_at", "finished_at", "attempts", "worker", "celery_task_id", "rows_done", "error",
                "updated_at",
            ]
        )  # fmt: skip
        transaction.on_commit(lambda: _publish(job))
    return job, ""


def _execute(job: InferenceJob) -> str:
    version = job.version
    task = version.model.task
    started = time.monotonic()
    try:
        pipeline = pipelines.get(version.pk, services.version_directory_ready(version), task)
    except (ModelLoadError, ArtifactError, OSError) as exc:
        return _end(job, InferenceStatus.FAILED, f"The model {version} could not be loaded: {_reason(exc)}")
    confusion: Counter[tuple[str, str]] = Counter()
    try:
        with job.input_file.open("rb") as source, tempfile.TemporaryFile() as result:
            deadline = started + settings.REGISTRY_JOB_TIMEOUT
            outcome = _rows_run(job, pipeline, InputRows(source), result, confusion, deadline=deadline)
            if outcome is not None:
                return _end(job, *outcome)
            job.result_file.save(f"job-{job.pk}-results.{job.input_format}", File(result), save=False)
    except (RegistryError, OSError) as exc:
        return _end(job, InferenceStatus.FAILED, f"The input file cannot be read: {_reason(exc)}")
    seconds = time.monotonic() - started
    metrics = {"seconds": round(seconds, 3), "rows_per_second": round(job.rows_done / max(seconds, 1e-9), 1)}
    if job.kind == InferenceKind.EVALUATION:
        metrics |= _evaluation(confusion, version.labels)
    return _end(job, InferenceStatus.COMPLETED, metrics=metrics)


def _rows_run(
    job: InferenceJob, pipeline, rows: InputRows, result, confusion: Counter, *, deadline: float
) -> tuple[str, str] | None:
    """Predict every row batch by batch into ``result`` (rewound at the end), counting (label, prediction)
    pairs of an evaluation in ``confusion``; the status and error to end with when the job must stop early."""
    task = job.version.model.task
    writer = _ResultWriter(result, rows, task)
    progress = _Progress(job)
    for batch in _batches(rows, settings.REGISTRY_JOB_BATCH_SIZE):
        if stop := _stop_reason(job, deadline):
            return stop
        try:
            outputs = _predict(pipeline, [row.text for row in batch], task)
        except Exception as exc:  # the model's own failure on these inputs, reported to the user
            return InferenceStatus.FAILED, (
                f"The model failed on rows {batch[0].number} to {batch[-1].number}: {type(exc).__name__}: {exc}"
            )
        writer.write(batch, outputs)
        if job.kind == InferenceKind.EVALUATION:
            confusion.update((row.label, output["label"]) for row, output in zip(batch, outputs, strict=True))
        job.rows_done += len(batch)
        progress.report()
    result.seek(0)
    return None


def _reason(exc: Exception) -> str:
    return exc.message if isinstance(exc, ArtifactError) else str(exc)


def _batches(rows: Iterable[InputRow], size: int) -> Iterator[list[InputRow]]:
    iterator = iter(rows)
    while batch := list(islice(iterator, size)):
        yield batch


def _stop_reason(job: InferenceJob, deadline: float) -> tuple[str, str] | None:
    """Why the worker must stop before the next batch (the status and error to end with), or None to go on.

    A job no longer running is being cancelled (or was reaped, and then _end drops the run).
    """
    if InferenceJob.objects.filter(pk=job.pk).values_list("status", flat=True).first() != InferenceStatus.RUNNING:
        return InferenceStatus.CANCELLED, ""
    if time.monotonic() > deadline:
        return InferenceStatus.FAILED, (
            f"Timed out after {settings.REGISTRY_JOB_TIMEOUT} s (REGISTRY_JOB_TIMEOUT), "
            f"{job.rows_done:,} of {job.rows_total:,} rows done."
        )
    return None


def _predict(pipeline, texts: list[str], task: str) -> list:
    """One output per text; the whole batch in one forward pass where padding cannot change the outputs."""
    tokenizer = getattr(pipeline, "tokenizer", None)
    pads = tokenizer is not None and tokenizer.pad_token_id is not None
    batch_size = len(texts) if pads and task in PADDING_SAFE_TASKS else 1
    if task == ModelTask.TEXT_CLASSIFICATION:
        # Long texts are cut to the model's maximum length rather than failing the whole batch.
        return pipeline(texts, batch_size=batch_size, truncation=True)
    return services.plain_outputs(pipeline(texts, batch_size=batch_size))


class _ResultWriter:
    """Results as CSV (row, text, label if given, predicted_label, score — or output) or JSONL, into ``raw``."""

    def __init__(self, raw, rows: InputRows, task: str):
        self.raw, self.format, self.with_label = raw, rows.format, rows.has_label_column
        self.classifies = task == ModelTask.TEXT_CLASSIFICATION
        if self.format == "csv":
            self.csv = SafeCsvWriter(_Utf8(raw))
            label = ["label"] if self.with_label else []
            self.csv.writerow(
                ["row", "text", *label, *(["predicted_label", "score"] if self.classifies else ["output"])]
            )

    def write(self, batch: list[InputRow], outputs: list) -> None:
        for row, output in zip(batch, outputs, strict=True):
            predicted = {"predicted_label": output["label"], "score": output["score"]} if self.classifies else None
            if self.format == "csv":
                label = [row.label or ""] if self.with_label else []
                values = list(predicted.values()) if predicted else [json.dumps(output, ensure_ascii=False)]
                self.csv.writerow([row.number, row.text, *label, *values])
            else:
                item = {"row": row.number, "text": row.text}
                if row.label is not None:
                    item["label"] = row.label
                item |= predicted or {"output": output}
                self.raw.write(json.dumps(item, ensure_ascii=False).encode() + b"\n")


class _Utf8:
    """A binary file seen as a text file for csv.writer (no wrapper that would close the file it wraps)."""

    def __init__(self, raw):
        self.raw = raw

    def write(self, text: str) -> int:
        return self.raw.write(text.encode())


class _Progress:
    """Rows done written and published at most every PROGRESS_INTERVAL_SECONDS (the final state always is)."""

    def __init__(self, job: InferenceJob):
        self.job, self.reported_at = job, time.monotonic()

    def report(self) -> None:
        if time.monotonic() - self.reported_at < PROGRESS_INTERVAL_SECONDS:
            return
        self.reported_at = time.monotonic()
        job = self.job
        job.updated_at = timezone.now()
        # Nothing is published once the job is being cancelled: "running" must not follow "cancelling".
        if InferenceJob.objects.filter(pk=job.pk, status=InferenceStatus.RUNNING).update(
            rows_done=job.rows_done, updated_at=job.updated_at
        ):
            _publish(job)


def _evaluation(confusion: Counter[tuple[str, str]], model_labels: list[str]) -> dict:
    """Accuracy, macro-F1 and the confusion matrix (rows: true labels, columns: predictions) from pair counts."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    pairs = list(confusion.items())
    truth = [true for (true, _), _ in pairs]
    predicted = [guess for (_, guess), _ in pairs]
    weights = [count for _, count in pairs]
    seen = set(truth) | set(predicted)
    labels = [*model_labels, *sorted(seen - set(model_labels))]
    matrix = confusion_matrix(truth, predicted, labels=labels, sample_weight=weights)
    return {
        "rows": sum(weights),
        "accuracy": round(float(accuracy_score(truth, predicted, sample_weight=weights)), 6),
        "macro_f1": round(
            float(f1_score(truth, predicted, average="macro", sample_weight=weights, zero_division=0)), 6
        ),
        "confusion_matrix": {"labels": labels, "matrix": matrix.astype(int).tolist()},
    }


def _end(job: InferenceJob, status: str, error: str = "", *, metrics: dict | None = None) -> str:
    """Record the end of a run, unless the job was reaped meanwhile; a job being cancelled ends cancelled."""
    with transaction.atomic():
        current = _locked(job.pk)
        if current is None or current.status not in ACTIVE_STATUSES:
            if job.result_file:
                job.result_file.delete(save=False)
            return f"Job {job.pk} was {current.status if current else 'deleted'} meanwhile; its run is dropped."
        current.rows_done = job.rows_done
        if current.status == InferenceStatus.CANCELLING:
            status = InferenceStatus.CANCELLED
            error = f"Cancelled while running, after {job.rows_done:,} of {job.rows_total:,} rows."
        if status == InferenceStatus.COMPLETED:
            current.result_file, current.metrics = job.result_file.name, metrics
            if current.kind == InferenceKind.EVALUATION:
                _version_metrics_merge(current)
        elif job.result_file:
            job.result_file.delete(save=False)
        _finish(current, status, error)
    return f"Job {job.pk} {status}{f': {error}' if error else ''}"


def _version_metrics_merge(job: InferenceJob) -> None:
    version = ModelVersion.objects.select_for_update().get(pk=job.version_id)
    evaluation = {key: job.metrics[key] for key in ("rows", "accuracy", "macro_f1", "confusion_matrix")}
    version.metrics = {**version.metrics, "evaluation": {"job": job.pk, **evaluation, "at": timezone.now().isoformat()}}
    version.save(update_fields=["metrics"])


def _locked(job_id: int) -> InferenceJob | None:
    return (
        InferenceJob.objects.select_for_update(of=("self",))
        .select_related("owner", "version__model")
        .filter(pk=job_id)
        .first()
    )


def _finish(job: InferenceJob, status: str, error: str, actor=None) -> InferenceJob:
    """Save a final status of a locked job; audit it, count it and publish it once committed."""
    was = job.status
    job.status, job.error, job.finished_at = status, error, timezone.now()
    job.save(update_fields=["status", "error", "finished_at", "rows_done", "result_file", "metrics", "updated_at"])
    changes = {"status": [was, status], "rows_done": job.rows_done}
    if error:
        changes["error"] = error
    if status == InferenceStatus.COMPLETED:
        changes["metrics"] = {key: value for key, value in job.metrics.items() if key != "confusion_matrix"}
    event_record(
        action=f"registry.job.{status}",
        actor=actor,
        obj=job,
        changes=changes,
        outcome=Outcome.FAILURE if status == InferenceStatus.FAILED else Outcome.SUCCESS,
    )
    REGISTRY_JOBS.labels(status=status).inc()
    transaction.on_commit(lambda: _publish(job))
    return job


def _publish(job: InferenceJob) -> None:
    job_updates_publish([(job.owner_id, selectors.inference_job_update_message(job))])


# --- Stale jobs (beat task registry.reap_stale)


def inference_jobs_reap_stale() -> str:
    """Fail jobs left running (or cancelling) longer than REGISTRY_JOB_TIMEOUT plus the grace period."""
    limit = settings.REGISTRY_JOB_TIMEOUT + settings.REGISTRY_STALE_GRACE_SECONDS
    cutoff = timezone.now() - timezone.timedelta(seconds=limit)
    with transaction.atomic():
        stale = list(
            InferenceJob.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("owner")
            .filter(status__in=ACTIVE_STATUSES, started_at__lt=cutoff)
        )
        for job in stale:
            if job.status == InferenceStatus.CANCELLING:
                _finish(job, InferenceStatus.CANCELLED, "Cancelled; its worker stopped answering.")
            else:
                _finish(
                    job, InferenceStatus.FAILED, f"No result {limit} s after it started; its worker was probably lost."
                )
    return f"Reaped {len(stale)} stale inference job(s)." if stale else "No stale inference jobs."


# --- Results


def inference_job_result(job: InferenceJob) -> tuple[File, str, str]:
    """The results file of a completed job, opened, with a download name and content type."""
    if job.status != InferenceStatus.COMPLETED:
        raise RegistryError(f"Job #{job.pk} is {job.status}; results exist only for completed jobs.", status=409)
    if not job.result_file:
        raise RegistryError(f"The results of job #{job.pk} are no longer stored.", status=404)
    name = f"inference-job-{job.pk}-results.{job.input_format}"
    return job.result_file.open("rb"), name, RESULT_CONTENT_TYPES[job.input_format]
