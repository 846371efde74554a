"""Quantum jobs: submit, cancel, re-run, run on the simulator, reap. Every transition is audited and published."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from apps.audit.choices import Outcome
from apps.audit.services import event_record
from apps.core.errors import ApplicationError, NotPermitted
from apps.core.queueing import enqueue_on_commit
from apps.core.services import job_updates_publish

from . import metrics
from .choices import ACTIVE_STATUSES, FINISHED_STATUSES, JobStatus, SimulationMethod
from .circuits import (
    CircuitError,
    circuit_parse,
    circuit_summary,
    memory_limit_error,
    qasm_version,
    state_memory_bytes,
)
from .models import QuantumJob
from .selectors import job_may_change, job_update_message, queue_length, queue_positions, shots_submitted_today
from .simulation import SimulationStopped, SimulatorCrashed, simulator_process

MAX_BATCH_JOBS = 500
MAX_TAGS = 10
MAX_TAG_LENGTH = 50
MAX_NAME_LENGTH = 200
PRIORITY_RANGE = (-10, 10)
_TAG = re.compile(r"^[\w.:-]+$")
# Larger circuits run one per simulator call: their run time dwarfs the call overhead.
BATCHABLE_MAX_QUBITS = 16


class JobValidationError(ApplicationError, ValueError):
    """A job cannot be accepted as submitted; ``field`` names the input at fault."""

    def __init__(self, field: str, message: str):
        super().__init__(message, field=field)


class JobBatchError(ValueError):
    """Some jobs of a batch are invalid; nothing was submitted. ``errors`` maps item index to field errors."""

    def __init__(self, errors: dict[int, dict[str, str]]):
        super().__init__(f"{len(errors)} of the jobs are invalid; nothing was submitted.")
        self.errors = errors


class JobQuotaError(ApplicationError):
    """The owner is over a queue or daily quota; the message gives the numbers."""

    status = 429
    code = "quota_exceeded"


class JobStateError(ApplicationError):
    """The job is not in a state that allows this action."""

    status = 409


@dataclass(frozen=True)
class JobSpec:
    """What a user submits; the fields not derived from the circuit."""

    source: str
    shots: int = 1024
    method: str = SimulationMethod.AUTOMATIC
    name: str = ""
    tags: tuple[str, ...] = ()
    seed: int | None = None
    noise: dict | None = None
    priority: int = 0
    measure_all: bool = False


# --- Submit


def job_submit(*, owner, spec: JobSpec) -> QuantumJob:
    """Validate and queue one job; raises JobValidationError (400) or JobQuotaError (429)."""
    return jobs_submit_batch(owner=owner, specs=[spec], single=True)[0]


def jobs_submit_batch(*, owner, specs: list[JobSpec], single: bool = False) -> list[QuantumJob]:
    """Validate every job, then queue all of them or none (JobBatchError lists the invalid items)."""
    if not single and not 1 <= len(specs) <= MAX_BATCH_JOBS:
        raise JobValidationError("jobs", f"A batch holds 1 to {MAX_BATCH_JOBS} jobs; this one has {len(specs)}.")
    jobs, errors = [], {}
    for index, spec in enumerate(specs):
        try:
            jobs.append(_job_build(owner, spec))
        except JobValidationError as exc:
            if single:
                raise
            errors[index] = {exc.field: exc.message}
    if errors:
        raise JobBatchError(errors)
    with transaction.atomic():
        # One submitter at a time per owner, so two requests cannot both squeeze under a quota.
        # NO KEY: rows that merely reference the user (jobs, audit events) may still be written.
        get_user_model().objects.select_for_update(no_key=True).filter(pk=owner.pk).first()
        _quotas_check(owner, jobs)
        created = QuantumJob.objects.bulk_create(jobs)
        _audit_each_or_listed(created, "quantum.job.submitted", actor=owner, changes=_submitted_changes)
        # Announced before a worker can take them, so "queued" never arrives after "running".
        transaction.on_commit(lambda: _publish(created, with_positions=True))
        what = "the job" if len(created) == 1 else f"the {len(created)} jobs"
        enqueue_on_commit(lambda: _jobs_enqueue(created), refused=partial(_jobs_not_queued, created), what=what)
    for job in created:
        metrics.QUANTUM_CIRCUIT_QUBITS.observe(job.num_qubits)
        metrics.QUANTUM_CIRCUIT_DEPTH.observe(job.depth)
    return created


def _job_build(owner, spec: JobSpec) -> QuantumJob:
    _check_settings(spec)
    source = spec.source
    if len(source.encode()) > settings.QUANTUM_MAX_SOURCE_BYTES:
        raise JobValidationError(
            "source",
            f"The program is {len(source.encode()):,} bytes; the limit is {settings.QUANTUM_MAX_SOURCE_BYTES:,} "
            "bytes (QUANTUM_MAX_SOURCE_BYTES).",
        )
    if not source.strip():
        raise JobValidationError("source", "The program is empty; paste an OpenQASM 2 or 3 circuit.")
    try:
        version = qasm_version(source)
        circuit = circuit_parse(source, version)
    except CircuitError as exc:
        raise JobValidationError("source", str(exc)) from None
    if spec.measure_all:
        circuit.measure_all()
    summary = circuit_summary(circuit)
    if not summary.has_measurements:
        raise JobValidationError(
            "source",
            "The circuit has no measurements, so it would produce no counts. Add measure statements, "
            'or submit with "measure_all": true to measure every qubit.',
        )
    if spec.method == SimulationMethod.STABILIZER and not summary.is_clifford:
        raise JobValidationError(
            "method",
            "The stabilizer method runs Clifford circuits only (h, s, cx, …); this circuit has other gates. "
            "Use statevector or matrix_product_state.",
        )
    memory = state_memory_bytes(spec.method, summary.num_qubits, is_clifford=summary.is_clifford)
    allowed = settings.QUANTUM_MAX_MEMORY_MB * 2**20
    if memory is not None and memory > allowed:
        raise JobValidationError("source", memory_limit_error(spec.method, summary, memory, allowed))
    noise = spec.noise or {}
    return QuantumJob(
        owner=owner,
        name=spec.name,
        tags=list(spec.tags),
        source=source,
        qasm_version=version,
        measure_all=spec.measure_all,
        num_qubits=summary.num_qubits,
        num_clbits=summary.num_clbits,
        depth=summary.depth,
        gate_counts=summary.gate_counts,
        estimated_memory_bytes=memory,
        shots=spec.shots,
        method=spec.method,
        seed=spec.seed,
        noise_depolarizing_1q=noise.get("depolarizing_1q", 0.0),
        noise_depolarizing_2q=noise.get("depolarizing_2q", 0.0),
        noise_readout=noise.get("readout", 0.0),
        priority=spec.priority,
    )


def _check_settings(spec: JobSpec) -> None:
    if not 1 <= spec.shots <= settings.QUANTUM_MAX_SHOTS:
        raise JobValidationError(
            "shots",
            f"Shots must be between 1 and {settings.QUANTUM_MAX_SHOTS:,} (QUANTUM_MAX_SHOTS); got {spec.shots}.",
        )
    if spec.method not in SimulationMethod.values:
        raise JobValidationError(
            "method", f"Unknown method {spec.method!r}; choose one of {', '.join(SimulationMethod.values)}."
        )
    if len(spec.name) > MAX_NAME_LENGTH:
        raise JobValidationError("name", f"The name is {len(spec.name)} characters; the limit is {MAX_NAME_LENGTH}.")
    if len(spec.tags) > MAX_TAGS:
        raise JobValidationError("tags", f"At most {MAX_TAGS} tags; got {len(spec.tags)}.")
    for tag in spec.tags:
        if not (0 < len(tag) <= MAX_TAG_LENGTH and _TAG.match(tag)):
            raise JobValidationError(
                "tags",
                f"Tag {tag!r} is not allowed: use 1 to {MAX_TAG_LENGTH} letters, digits, '.', ':', '_' or '-'.",
            )
    low, high = PRIORITY_RANGE
    if not low <= spec.priority <= high:
        raise JobValidationError("priority", f"Priority must be between {low} and {high}; got {spec.priority}.")
    if spec.seed is not None and not 0 <= spec.seed < 2**63:
        raise JobValidationError("seed", "The seed must be a non-negative integer below 2⁶³.")
    for key, rate in (spec.noise or {}).items():
        if key not in ("depolarizing_1q", "depolarizing_2q", "readout"):
            raise JobValidationError(
                "noise", f"Unknown noise setting {key!r}; use depolarizing_1q, depolarizing_2q and readout."
            )
        if not isinstance(rate, int | float) or not 0 <= rate <= 1:
            raise JobValidationError("noise", f"The noise rate {key} must be a number from 0 to 1; got {rate!r}.")


def _quotas_check(owner, jobs: list[QuantumJob]) -> None:
    limit = settings.QUANTUM_MAX_QUEUED_PER_USER
    queued = QuantumJob.objects.filter(owner=owner, status=JobStatus.QUEUED).count()
    if queued + len(jobs) > limit:
        raise JobQuotaError(
            f"You have {queued} queued job(s) and submitted {len(jobs)} more; at most {limit} may wait at once "
            "(QUANTUM_MAX_QUEUED_PER_USER). Wait for some to finish or cancel some."
        )
    quota = settings.QUANTUM_DAILY_SHOTS_QUOTA
    used = shots_submitted_today(owner)
    wanted = sum(job.shots for job in jobs)
    if used + wanted > quota:
        raise JobQuotaError(
            f"Today you have submitted {used:,} shots and asked for {wanted:,} more; the daily quota is {quota:,} "
            "shots (QUANTUM_DAILY_SHOTS_QUOTA). It resets at midnight UTC."
        )


def _submitted_changes(job: QuantumJob) -> dict:
    return {"qubits": job.num_qubits, "shots": job.shots, "method": job.method}


def _jobs_enqueue(jobs: list[QuantumJob]) -> None:
    from .tasks import run_jobs  # tasks import this module

    # Small jobs of one priority travel in messages of up to QUANTUM_BATCH_SIZE; each large one
    # alone, so that one message never holds more than a job timeout of simulation.
    small: dict[int, list[int]] = {}
    for job in jobs:
        if _batchable(job):
            small.setdefault(job.priority, []).append(job.id)
        else:
            run_jobs.apply_async(([job.id],), priority=_message_priority(job.priority))
    batch = settings.QUANTUM_BATCH_SIZE
    for priority, ids in small.items():
        for start in range(0, len(ids), batch):
            run_jobs.apply_async((ids[start : start + batch],), priority=_message_priority(priority))


def _jobs_not_queued(jobs: list[QuantumJob], reason: str) -> None:
    """Fail the jobs still queued whose messages the broker refused, so that none waits for a run that never comes."""
    with transaction.atomic():
        queued = (
            QuantumJob.objects.select_for_update(of=("self",))
            .select_related("owner")
            .filter(id__in=[job.id for job in jobs], status=JobStatus.QUEUED)
        )
        failed = [_finish(job, JobStatus.FAILED, f"Not run: {reason}. Submit it again.") for job in queued]
        _save_finished(failed)
        _audit_each_or_listed(failed, "quantum.job.failed", outcome=Outcome.FAILURE, changes=_error_changes)
        transaction.on_commit(lambda: _publish(failed))


def _batchable(job: QuantumJob) -> bool:
    return job.seed is None and job.num_qubits <= BATCHABLE_MAX_QUBITS


def _message_priority(priority: int) -> int:
    """Job priority 10 … -10 as the broker's levels 0 (first) … 9."""
    low, high = PRIORITY_RANGE
    return round((high - priority) * 9 / (high - low))


# --- Cancel and re-run


def job_cancel(*, job: QuantumJob, actor) -> QuantumJob:
    """Cancel a queued job at once; ask the worker to stop a running one (it reaches cancelled within 2 s)."""
    if not job_may_change(actor, job):
        raise NotPermitted("Only the job's owner (an operator) or an administrator may cancel it.")
    with transaction.atomic():
        job = QuantumJob.objects.select_for_update(of=("self",)).select_related("owner").get(pk=job.pk)
        if job.status in FINISHED_STATUSES:
            raise JobStateError(f"Job #{job.pk} is already {job.status}; there is nothing to cancel.")
        if job.status == JobStatus.CANCELLING:
            return job
        was = job.status
        if was == JobStatus.QUEUED:
            job.status, job.finished_at = JobStatus.CANCELLED, timezone.now()
            job.error = f"Cancelled by {actor.get_username()} before it ran."
            metrics.QUANTUM_JOBS.labels(status=JobStatus.CANCELLED, method=job.method).inc()
        else:
            job.status = JobStatus.CANCELLING
        job.save(update_fields=["status", "finished_at", "error", "updated_at"])
        event_record(action="quantum.job.cancelled", actor=actor, obj=job, changes={"status": [was, job.status]})
        transaction.on_commit(lambda: _publish([job]))
    return job


def job_rerun(*, job: QuantumJob, actor) -> QuantumJob:
    """Submit a copy of a job (its circuit and settings) as a new job owned by the same user."""
    if not job_may_change(actor, job):
        raise NotPermitted("Only the job's owner (an operator) or an administrator may re-run it.")
    spec = JobSpec(
        source=job.source,
        shots=job.shots,
        method=job.method,
        name=job.name,
        tags=tuple(job.tags),
        seed=job.seed,
        noise=job.noise,
        priority=job.priority,
        measure_all=job.measure_all,
    )
    with transaction.atomic():
        copy = job_submit(owner=job.owner, spec=spec)
        QuantumJob.objects.filter(pk=copy.pk).update(rerun_of=job)
        copy.rerun_of = job
        event_record(action="quantum.job.rerun", actor=actor, obj=copy, changes={"rerun_of": job.pk})
    return copy


# --- Running (called by the quantum.run_jobs task)


def jobs_run(*, job_ids: list[int], task_id: str, worker: str) -> str:
    """Run the given jobs that are still queued, small ones together in one simulator call.

    A message delivered again after its worker died finds its jobs running
    under its own task id: they are run again, or failed after
    QUANTUM_MAX_ATTEMPTS. Returns a summary for the task result.
    """
    jobs = _jobs_claim(job_ids, task_id, worker)
    for group in _groups(jobs):
        _group_run(group)
    return f"ran {len(jobs)} of {len(job_ids)} job(s)"


def _jobs_claim(job_ids: list[int], task_id: str, worker: str) -> list[QuantumJob]:
    now = timezone.now()
    claimed, lost, cancelled = [], [], []
    with transaction.atomic():
        candidates = (
            QuantumJob.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("owner")
            .filter(id__in=job_ids)
            .order_by("-priority", "id")
        )
        for job in candidates:
            redelivered = job.status in ACTIVE_STATUSES and job.celery_task_id == task_id
            if job.status == JobStatus.CANCELLING and redelivered:
                cancelled.append(_finish(job, JobStatus.CANCELLED, "Cancelled; its worker stopped before it finished."))
            elif redelivered and job.attempts >= settings.QUANTUM_MAX_ATTEMPTS:
                lost.append(
                    _finish(
                        job,
                        JobStatus.FAILED,
                        f"The worker running this job was lost {job.attempts} times "
                        f"(QUANTUM_MAX_ATTEMPTS = {settings.QUANTUM_MAX_ATTEMPTS}); not trying again.",
                    )
                )
            elif job.status == JobStatus.QUEUED or redelivered:
                job.status, job.started_at, job.updated_at, job.finished_at = JobStatus.RUNNING, now, now, None
                job.attempts += 1
                job.worker, job.celery_task_id = worker[:200], task_id or ""
                claimed.append(job)
        _jobs_save(claimed, ["status", "started_at", "finished_at", "attempts", "worker", "celery_task_id"])
        _save_finished(lost + cancelled)
        _audit_each_or_listed(lost, "quantum.job.failed", outcome=Outcome.FAILURE, changes=_error_changes)
        _audit_each_or_listed(cancelled, "quantum.job.cancelled", changes=_status_changes)
        changed = claimed + lost + cancelled
        transaction.on_commit(lambda: _publish(changed))
    return claimed


def _groups(jobs: list[QuantumJob]) -> Iterable[list[QuantumJob]]:
    """Jobs that can share one simulator call (same settings, no seed, small) together; the rest alone."""
    shared: dict[tuple, list[QuantumJob]] = {}
    for job in jobs:
        if _batchable(job):
            key = (job.method, job.shots, job.noise_depolarizing_1q, job.noise_depolarizing_2q, job.noise_readout)
            shared.setdefault(key, []).append(job)
        else:
            yield [job]
    yield from shared.values()


def _group_run(group: list[QuantumJob]) -> None:
    while group:
        request = {
            "circuits": [(job.source, job.qasm_version, job.measure_all) for job in group],
            "method": group[0].method,
            "shots": group[0].shots,
            "seed": group[0].seed,
            "noise": (group[0].noise_depolarizing_1q, group[0].noise_depolarizing_2q, group[0].noise_readout)
            if group[0].noise
            else None,
        }
        deadline = time.monotonic() + settings.QUANTUM_JOB_TIMEOUT
        cancelled = partial(_cancel_requested, [job.id for job in group])
        try:
            response = simulator_process().run(request, deadline=deadline, cancelled=cancelled)
        except SimulationStopped as stop:
            if stop.reason == "timeout":
                _jobs_finish(group, error=f"Timed out after {settings.QUANTUM_JOB_TIMEOUT} s (QUANTUM_JOB_TIMEOUT).")
                return
            # Cancelled: finish the jobs that asked for it, run the rest again.
            group = _jobs_finish(group, error="")
            continue
        except SimulatorCrashed as exc:
            _jobs_finish(group, error=f"The simulator stopped unexpectedly: {exc}. It may have run out of memory.")
            return
        if "error" in response:
            _jobs_finish(group, error=f"The simulation failed: {response['error']}")
        else:
            _jobs_finish(group, results=response["results"])
        return


def _cancel_requested(ids: list[int]) -> bool:
    return QuantumJob.objects.filter(id__in=ids, status=JobStatus.CANCELLING).exists()


def _jobs_finish(group: list[QuantumJob], *, results: list[dict] | None = None, error: str = "") -> list[QuantumJob]:
    """Store the outcome of a simulator call. Jobs being cancelled end cancelled whatever the outcome.

    With neither results nor error (the call was stopped to cancel), the jobs
    not being cancelled are returned to be run again.
    """
    outcome = dict(zip([job.id for job in group], results or [{"error": error}] * len(group), strict=True))
    completed, failed, cancelled, again = [], [], [], []
    with transaction.atomic():
        # Only the job rows: locking their owners too would deadlock with a submit by the same owner.
        for job in QuantumJob.objects.select_for_update(of=("self",)).select_related("owner").filter(id__in=outcome):
            result = outcome[job.id]
            if job.status == JobStatus.CANCELLING:
                cancelled.append(_finish(job, JobStatus.CANCELLED, "Cancelled while running; the simulation stopped."))
            elif job.status != JobStatus.RUNNING:
                continue  # reaped meanwhile
            elif results is None and not error:
                again.append(job)
            elif "counts" in result:
                job.counts, job.duration_seconds = result["counts"], result["seconds"]
                completed.append(_finish(job, JobStatus.COMPLETED, ""))
            else:
                failed.append(_finish(job, JobStatus.FAILED, result["error"]))
        _save_finished(completed + failed + cancelled)
        _audit_each_or_listed(completed, "quantum.job.completed", changes=_completed_changes)
        _audit_each_or_listed(failed, "quantum.job.failed", outcome=Outcome.FAILURE, changes=_error_changes)
        _audit_each_or_listed(cancelled, "quantum.job.cancelled", changes=_status_changes)
        finished = completed + failed + cancelled
        transaction.on_commit(lambda: _publish(finished))
    for job in completed:
        metrics.QUANTUM_JOB_DURATION.observe(job.duration_seconds)
        metrics.QUANTUM_SHOTS.inc(job.shots)
    return sorted(again, key=lambda job: job.id)


def _finish(job: QuantumJob, status: str, error: str) -> QuantumJob:
    job.status, job.error = status, error
    job.finished_at = job.updated_at = timezone.now()
    metrics.QUANTUM_JOBS.labels(status=status, method=job.method).inc()
    return job


def _save_finished(jobs: list[QuantumJob]) -> None:
    _jobs_save(jobs, ["status", "error", "finished_at", "counts", "duration_seconds"])


def _jobs_save(jobs: list[QuantumJob], field_names: list[str]) -> None:
    """Write these fields (and updated_at) of each job: one UPDATE per row, sent together.

    bulk_update builds a CASE expression per field and row, and resolving those
    costs more than the database work for a batch of small jobs.
    """
    if not jobs:
        return
    fields = [QuantumJob._meta.get_field(name) for name in [*field_names, "updated_at"]]
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    sql = f"UPDATE {quote(QuantumJob._meta.db_table)} SET {assignments} WHERE id = %s"  # noqa: S608
    rows = [
        [*(field.get_db_prep_save(getattr(job, field.attname), connection) for field in fields), job.pk] for job in jobs
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def _completed_changes(job: QuantumJob) -> dict:
    return {"status": JobStatus.COMPLETED, "duration_seconds": round(job.duration_seconds, 6)}


def _error_changes(job: QuantumJob) -> dict:
    return {"status": job.status, "error": job.error}


def _status_changes(job: QuantumJob) -> dict:
    return {"status": job.status}


# --- Stale jobs (beat task quantum.reap_stale)


def jobs_reap_stale() -> str:
    """Fail jobs left running (or cancelling) longer than QUANTUM_JOB_TIMEOUT plus the grace period."""
    limit = settings.QUANTUM_JOB_TIMEOUT + settings.QUANTUM_STALE_GRACE_SECONDS
    cutoff = timezone.now() - timezone.timedelta(seconds=limit)
    with transaction.atomic():
        stale = list(
            QuantumJob.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("owner")
            .filter(status__in=ACTIVE_STATUSES, started_at__lt=cutoff)
        )
        for job in stale:
            if job.status == JobStatus.CANCELLING:
                _finish(job, JobStatus.CANCELLED, "Cancelled; its worker stopped answering.")
            else:
                _finish(job, JobStatus.FAILED, f"No result {limit} s after it started; its worker was probably lost.")
        _save_finished(stale)
        _audit_each_or_listed(stale, "quantum.job.reaped", outcome=Outcome.FAILURE, changes=_error_changes)
        transaction.on_commit(lambda: _publish(stale))
    metrics.QUANTUM_QUEUE_LENGTH.set(queue_length())
    return f"Reaped {len(stale)} stale job(s)." if stale else "No stale jobs."


# --- Audit and live updates


def _audit_each_or_listed(jobs: list[QuantumJob], action: str, *, actor=None, outcome=Outcome.SUCCESS, changes) -> None:
    """One audit event per job, or for many jobs at once one event listing them (ids and details)."""
    if len(jobs) == 1:
        event_record(action=action, actor=actor, obj=jobs[0], changes=changes(jobs[0]), outcome=outcome)
    elif jobs:
        event_record(
            action=action,
            actor=actor,
            object_type=QuantumJob._meta.label_lower,
            object_id=f"{jobs[0].pk}…{jobs[-1].pk}",
            object_repr=f"{len(jobs)} jobs",
            changes={"jobs": {str(job.pk): changes(job) for job in jobs}},
            outcome=outcome,
        )


def _publish(jobs: list[QuantumJob], *, with_positions: bool = False) -> None:
    positions = queue_positions(jobs) if with_positions else {}
    job_updates_publish([(job.owner_id, job_update_message(job, queue_position=positions.get(job.id))) for job in jobs])
    metrics.QUANTUM_QUEUE_LENGTH.set(queue_length())
