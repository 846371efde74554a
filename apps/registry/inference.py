"""Batch inference and evaluation jobs: a CSV or JSONL file of texts run through a model version on a worker.

The job layer (apps.jobs) runs their lifecycle: every transition is audited and published on /ws/jobs/ with
``kind: "inference"`` and the rows done so far as progress. This module reads the rows, runs them in batches
and writes the results and evaluation metrics.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from functools import partial
from itertools import chain, islice

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils import timezone

from apps.core.choices import Role
from apps.core.csv_cells import SafeCsvWriter
from apps.core.permissions import WRITE_ROLES, has_role
from apps.core.queueing import QueueUnavailable
from apps.core.storage import StorageUnavailable
from apps.jobs.choices import JobStatus
from apps.jobs.kinds import JobKind
from apps.jobs.lifecycle import Outcome, job_cancel, jobs_claim, jobs_finish, jobs_submitted
from apps.jobs.running import JobRun

from . import selectors, services
from .artifacts import ArtifactError
from .batching import batch_classifier
from .choices import InferenceKind, ModelTask
from .drift import drift_bins, drift_reference
from .loading import ModelLoadError, pipelines
from .metrics import REGISTRY_JOBS
from .models import InferenceJob, ModelVersion, RegisteredModel
from .services import RegistryError

MAX_NAME_LENGTH = 200
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
                    f"{settings.REGISTRY_MAX_INPUT_CHARS:,} characters of text.",
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
                f"Row {number} (line {self.line}) has {len(text):,} characters of text; the limit is {limit:,}.",
                field="file",
            )
        return InputRow(number, text, label.strip() or None)


# --- Permissions


def inference_job_may_change(user, job: InferenceJob) -> bool:
    """Cancel: the job's owner (with a writing role) or an administrator."""
    return has_role(user, Role.ADMIN) or (job.owner_id == user.pk and has_role(user, *WRITE_ROLES))


# --- The job kind (registered in RegistryConfig.ready)


def _jobs_send(jobs: list[InferenceJob]) -> None:
    from .tasks import run_inference_job  # tasks import this module

    for job in jobs:
        run_inference_job.delay(job.pk)


def _audit_changes(job: InferenceJob) -> dict:
    changes = {"status": job.status, "rows_done": job.progress_done}
    if job.error:
        changes["error"] = job.error
    if job.status == JobStatus.COMPLETED:
        changes["metrics"] = {
            key: value for key, value in job.metrics.items() if key not in ("confusion_matrix", "reference")
        }
    return changes


def _job_finished(job: InferenceJob) -> None:
    """Count the job; a completed evaluation's figures become the version's latest evaluation."""
    REGISTRY_JOBS.labels(status=job.status).inc()
    if job.status == JobStatus.COMPLETED and job.kind == InferenceKind.EVALUATION:
        _version_metrics_merge(job)


def _version_metrics_merge(job: InferenceJob) -> None:
    version = ModelVersion.objects.select_for_update().get(pk=job.version_id)
    # The reference distributions of the drift watch (apps.registry.drift) come with the evaluation.
    keys = ("rows", "accuracy", "macro_f1", "confusion_matrix", "reference")
    evaluation = {key: job.metrics[key] for key in keys if key in job.metrics}
    version.metrics = {**version.metrics, "evaluation": {"job": job.pk, **evaluation, "at": timezone.now().isoformat()}}
    version.save(update_fields=["metrics"])


INFERENCE_JOBS = JobKind(
    name="inference",
    model=InferenceJob,
    audit_prefix="registry.job",
    send=_jobs_send,
    visible_to=selectors.inference_jobs_visible_to,
    changes=_audit_changes,
    on_finished=_job_finished,
    select_related=("owner", "version__model"),
    page=lambda job: reverse("registry_page:model", args=[job.version.model.name]),
)


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
            f"The file is {_size(upload) / 2**20:,.1f} MB; the limit is {limit_mb:,} MB.",
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
    job = InferenceJob(
        owner=owner,
        version=version,
        kind=kind,
        name=name,
        input_format=rows.format,
        progress_total=total,
        max_attempts=settings.REGISTRY_MAX_ATTEMPTS,
    )
    stored = ""
    try:
        upload.seek(0)
        job.input_file.save(f"{uuid.uuid4().hex}.{rows.format}", File(upload), save=False)
        stored = job.input_file.name
        with transaction.atomic():
            job.save()
            changes = {"kind": kind, "rows": total, "model": model.name, "version": version.version}
            jobs_submitted(INFERENCE_JOBS, [job], actor=owner, changes=lambda job: changes, what=f"job #{job.pk}")
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
                f"The file has more than {limit:,} rows, the limit. Split it into several jobs.",
                field="file",
            )
        labelled += row.label is not None
    if not total:
        raise RegistryError("The file has a header but no rows.", field="file")
    return total, labelled


# --- Cancel


def inference_job_cancel(*, job: InferenceJob, actor) -> InferenceJob:
    """Cancel a queued job at once; ask the worker to stop a running one (it stops after its current batch).

    Raises RegistryError (403) for others' jobs, JobStateError (409) for a finished one.
    """
    if not inference_job_may_change(actor, job):
        raise RegistryError("Only the job's owner (an operator) or an administrator may cancel it.", status=403)
    return job_cancel(INFERENCE_JOBS, job, actor=actor)


# --- Running (called by the registry.run_inference_job task)


def inference_job_run(*, job_id: int, task_id: str, worker: str) -> str:
    """Run a queued job batch by batch, writing its results file; returns a summary for the task result.

    A message delivered again after its worker died runs the job again from the start (see jobs_claim).
    """
    claimed = jobs_claim(INFERENCE_JOBS, [job_id], task_id=task_id, worker=worker)
    if not claimed:
        status = InferenceJob.objects.filter(pk=job_id).values_list("status", flat=True).first()
        return f"Job {job_id} is {status}; not run." if status else f"Job {job_id} no longer exists."
    job = claimed[0]
    with JobRun(INFERENCE_JOBS, claimed, task_id=task_id) as run:
        try:
            outcome = _execute(job, run)
        except SoftTimeLimitExceeded:
            outcome = Outcome(
                JobStatus.FAILED,
                f"Stopped by the task time limit after {job.progress_done:,} of {job.progress_total:,} rows "
                f"(CELERY_TASK_SOFT_TIME_LIMIT = {settings.CELERY_TASK_SOFT_TIME_LIMIT} s).",
            )
    return _end(job, outcome)


def _execute(job: InferenceJob, run: JobRun) -> Outcome:
    version = job.version
    started = time.monotonic()
    try:
        pipeline = pipelines.get(version.pk, services.version_directory_ready(version), version.model.task)
    except StorageUnavailable as exc:
        return Outcome(JobStatus.FAILED, exc.message)
    except (ModelLoadError, ArtifactError, OSError) as exc:
        return Outcome(JobStatus.FAILED, f"The model {version} could not be loaded: {_reason(exc)}")
    confusion: Counter[tuple[str, str]] = Counter()
    bins: Counter[tuple[str, str]] = Counter()
    try:
        with job.input_file.open("rb") as source, tempfile.TemporaryFile() as result:
            deadline = started + settings.REGISTRY_JOB_TIMEOUT
            stopped = _rows_run(job, run, pipeline, InputRows(source), result, confusion, bins, deadline=deadline)
            if stopped is not None:
                return stopped
            job.result_file.save(f"job-{job.pk}-results.{job.input_format}", File(result), save=False)
    except StorageUnavailable as exc:
        return Outcome(JobStatus.FAILED, exc.message)
    except (RegistryError, OSError) as exc:
        return Outcome(JobStatus.FAILED, f"The input file cannot be read: {_reason(exc)}")
    seconds = time.monotonic() - started
    metrics = {"seconds": round(seconds, 3), "rows_per_second": round(job.progress_done / max(seconds, 1e-9), 1)}
    if job.kind == InferenceKind.EVALUATION:
        metrics |= _evaluation(confusion, version.labels) | {"reference": drift_reference(bins)}
    return Outcome(JobStatus.COMPLETED, fields={"result_file": job.result_file.name, "metrics": metrics})


def _rows_run(
    job: InferenceJob,
    run: JobRun,
    pipeline,
    rows: InputRows,
    result,
    confusion: Counter,
    bins: Counter,
    *,
    deadline: float,
) -> Outcome | None:
    """Predict every row batch by batch into ``result`` (rewound at the end), counting (label, prediction)
    pairs of an evaluation in ``confusion`` and its drift features in ``bins``; how the job ends when it must stop
    early."""
    task = job.version.model.task
    writer = _ResultWriter(result, rows, task)
    predict = _predictor(pipeline, task)
    for batch in _batches(rows, settings.REGISTRY_JOB_BATCH_SIZE):
        if stop := _stop_reason(job, run, deadline):
            return stop
        texts = [row.text for row in batch]
        try:
            outputs = predict(texts)
        except Exception as exc:  # the model's own failure on these inputs, reported to the user
            return Outcome(
                JobStatus.FAILED,
                f"The model failed on rows {batch[0].number} to {batch[-1].number}: {type(exc).__name__}: {exc}",
            )
        writer.write(batch, outputs)
        if job.kind == InferenceKind.EVALUATION:
            confusion.update((row.label, output["label"]) for row, output in zip(batch, outputs, strict=True))
            bins.update(drift_bins(texts, outputs))
        run.progress(job, job.progress_done + len(batch))
    result.seek(0)
    return None


def _reason(exc: Exception) -> str:
    return exc.message if isinstance(exc, ArtifactError) else str(exc)


def _batches(rows: Iterable[InputRow], size: int) -> Iterator[list[InputRow]]:
    iterator = iter(rows)
    while batch := list(islice(iterator, size)):
        yield batch


def _stop_reason(job: InferenceJob, run: JobRun, deadline: float) -> Outcome | None:
    """How the job ends if the worker must stop before the next batch (cancelled, timed out), or None to go on."""
    done = f"{job.progress_done:,} of {job.progress_total:,} rows"
    if run.cancel_requested.is_set():
        return Outcome(JobStatus.CANCELLED, f"Cancelled while running, after {done}.")
    if time.monotonic() > deadline:
        limit = settings.REGISTRY_JOB_TIMEOUT
        return Outcome(
            JobStatus.FAILED, f"Timed out: a job may run for at most {limit:,} second{pluralize(limit)}; {done} done."
        )
    return None


def _predictor(pipeline, task: str) -> Callable[[list[str]], list]:
    """How a job predicts a batch of texts: one output per text, as a synchronous prediction gives it.

    Text classification runs the model directly (apps.registry.batching: texts sorted by token length, forward
    passes within REGISTRY_JOB_BATCH_TOKENS), at about three times the pipeline's speed; other tasks run the
    pipeline, the whole batch in one forward pass where padding cannot change the outputs.
    """
    if task == ModelTask.TEXT_CLASSIFICATION and (classifier := batch_classifier(pipeline)):
        return partial(classifier, max_tokens=settings.REGISTRY_JOB_BATCH_TOKENS)
    tokenizer = getattr(pipeline, "tokenizer", None)
    pads = tokenizer is not None and tokenizer.pad_token_id is not None

    def predict(texts: list[str]) -> list:
        batch_size = len(texts) if pads and task in PADDING_SAFE_TASKS else 1
        return services.plain_outputs(pipeline(texts, batch_size=batch_size))

    return predict


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


def _end(job: InferenceJob, outcome: Outcome) -> str:
    """Store how the run ended. The results file stays only with a completed job: not when the job was being
    cancelled meanwhile, nor when it was requeued (its run is then dropped)."""
    outcome = replace(outcome, fields={**outcome.fields, "progress_done": job.progress_done})
    finished = jobs_finish(INFERENCE_JOBS, {job.pk: outcome})
    if job.result_file and not (finished and finished[0].status == JobStatus.COMPLETED):
        # With the storage down, the file stays behind, named by no job.
        with contextlib.suppress(StorageUnavailable):
            job.result_file.delete(save=False)
    if not finished:
        return f"Job {job.pk} was requeued or ended meanwhile; its run is dropped."
    ended = finished[0]
    return f"Job {job.pk} {ended.status}{f': {ended.error}' if ended.error else ''}"


# --- Results


def inference_job_result(job: InferenceJob) -> tuple[File, str, str]:
    """The results file of a completed job, opened, with a download name and content type."""
    if job.status != JobStatus.COMPLETED:
        raise RegistryError(f"Job #{job.pk} is {job.status}; results exist only for completed jobs.", status=409)
    if not job.result_file:
        raise RegistryError(f"The results of job #{job.pk} are no longer stored.", status=404)
    name = f"inference-job-{job.pk}-results.{job.input_format}"
    return job.result_file.open("rb"), name, RESULT_CONTENT_TYPES[job.input_format]
