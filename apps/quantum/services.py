"""Quantum jobs: submit, cancel, re-run, run on the simulator, reap. Every transition is audited and published."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.template.defaultfilters import pluralize

from apps.audit.services import event_record
from apps.core import formatting
from apps.core.errors import ApplicationError, NotPermitted
from apps.core.queueing import enqueue_on_commit, message_priority
from apps.jobs import lifecycle
from apps.jobs.choices import JobStatus
from apps.jobs.kinds import job_kind
from apps.jobs.lifecycle import Outcome, jobs_claim, jobs_finish, jobs_submitted
from apps.jobs.running import JobRun
from apps.jobs.workers import workers_live

from . import metrics
from .choices import Primitive, Processor, SimulationMethod
from .circuits import (
    CircuitError,
    circuit_parse,
    circuit_summary,
    estimated_seconds,
    memory_limit_error,
    qasm_version,
    state_memory_bytes,
)
from .devices import device, unknown_device_message
from .models import QuantumJob
from .primitives import (
    MAX_BITSTRINGS,
    MAX_SWEEP_OUTCOMES,
    PrimitiveError,
    observables_check,
    parameter_sets_check,
    precision_check,
)
from .selectors import job_may_change, queue_length, shots_submitted_today
from .simulation import SimulationStopped, SimulatorCrashed, simulator_process

MAX_BATCH_JOBS = 500
MAX_TAGS = 10
MAX_TAG_LENGTH = 50
MAX_NAME_LENGTH = 200
PRIORITY_RANGE = (-10, 10)
_TAG = re.compile(r"^[\w.:-]+$")
NOISE_RATES = ("depolarizing_1q", "depolarizing_2q", "readout")
# Methods that can simulate a device's calibrated noise (thermal relaxation is not a Clifford error).
DEVICE_METHODS = (
    SimulationMethod.AUTOMATIC,
    SimulationMethod.STATEVECTOR,
    SimulationMethod.DENSITY_MATRIX,
    SimulationMethod.MATRIX_PRODUCT_STATE,
)
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
    primitive: str = Primitive.SAMPLER
    parameter_sets: list[dict] | None = None
    observables: list | None = None
    precision: float | None = None
    bitstrings: bool = False
    processor: str = Processor.CPU


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
        jobs_submitted(_kind(), created, actor=owner, changes=_submitted_changes)
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
            f"The program is {len(source.encode()):,} bytes; the limit is {settings.QUANTUM_MAX_SOURCE_BYTES:,} bytes.",
        )
    if not source.strip():
        raise JobValidationError("source", "The program is empty; paste an OpenQASM 2 or 3 circuit.")
    try:
        version = qasm_version(source)
        circuit = circuit_parse(source, version)
    except CircuitError as exc:
        raise JobValidationError("source", str(exc)) from None
    try:
        primitive = _primitive_check(spec, circuit)
    except PrimitiveError as exc:
        raise JobValidationError(exc.field, exc.message) from None
    if spec.measure_all:
        circuit.measure_all()
    summary = circuit_summary(circuit)
    if spec.primitive == Primitive.SAMPLER and not summary.has_measurements:
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
    noise = spec.noise or {}
    device_name = noise.get("device", "")
    if device_name and summary.num_qubits > device(device_name).num_qubits:
        raise JobValidationError(
            "source",
            f"The circuit has {summary.num_qubits} qubits; device {device_name} has only "
            f"{device(device_name).num_qubits}. Choose a larger device or fewer qubits.",
        )
    memory = state_memory_bytes(spec.method, summary.num_qubits, is_clifford=summary.is_clifford)
    allowed = settings.QUANTUM_MAX_MEMORY_MB * 2**20
    if memory is not None and memory > allowed:
        raise JobValidationError("source", memory_limit_error(spec.method, summary, memory, allowed))
    # Each parameter set of a sweep is one more simulation of the circuit.
    seconds = estimated_seconds(spec.method, summary, shots=spec.shots, noisy=bool(noise)) * primitive["sweep_size"]
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
        processor=spec.processor,
        device=device_name,
        estimated_seconds=seconds,
        queue=job_route(processor=spec.processor, memory_bytes=memory, seconds=seconds),
        noise_depolarizing_1q=noise.get("depolarizing_1q", 0.0),
        noise_depolarizing_2q=noise.get("depolarizing_2q", 0.0),
        noise_readout=noise.get("readout", 0.0),
        priority=spec.priority,
        max_attempts=settings.QUANTUM_MAX_ATTEMPTS,
        **primitive,
    )


def _primitive_check(spec: JobSpec, circuit) -> dict:
    """The job's primitive fields, checked against the circuit (its parameters, qubits and measurements).

    An estimator's circuit may end in measurements: they are dropped before the run, as a job measuring every
    qubit and estimating observables wants the state before measurement.
    """
    if spec.primitive not in Primitive.values:
        raise PrimitiveError(
            "primitive", f"Unknown primitive {spec.primitive!r}; choose one of {', '.join(Primitive.values)}."
        )
    parameters = sorted(parameter.name for parameter in circuit.parameters)
    max_sets = settings.QUANTUM_MAX_SWEEP
    parameter_sets = parameter_sets_check(parameters, spec.parameter_sets, max_sets=max_sets)
    sweep_size = len(parameter_sets) if parameter_sets is not None else 1
    fields = {"primitive": spec.primitive, "parameters": parameters, "parameter_sets": parameter_sets}
    fields["sweep_size"] = sweep_size
    if spec.primitive == Primitive.SAMPLER:
        if spec.observables is not None or spec.precision is not None:
            field = "observables" if spec.observables is not None else "precision"
            raise PrimitiveError(field, f'{field} applies to "primitive": "estimator" jobs only.')
        if spec.bitstrings and spec.shots * sweep_size > MAX_BITSTRINGS:
            raise PrimitiveError(
                "bitstrings",
                f"Per-shot bitstrings are kept for up to {MAX_BITSTRINGS:,} shots (shots times parameter sets); "
                f"this job has {spec.shots * sweep_size:,}. Ask for counts only, or fewer shots or sets.",
            )
        bits = circuit.num_clbits + (circuit.num_qubits if spec.measure_all else 0)
        outcomes = min(spec.shots, 2**bits)
        if sweep_size > 1 and outcomes * sweep_size > MAX_SWEEP_OUTCOMES:
            raise PrimitiveError(
                "parameter_sets",
                f"A sweep's counts may hold up to {MAX_SWEEP_OUTCOMES:,} outcomes in all; {sweep_size:,} sets of up "
                f"to {outcomes:,} outcomes each (the lesser of shots and 2 to the number of bits) could hold "
                f"{outcomes * sweep_size:,}. Use fewer shots or fewer parameter sets.",
            )
        return {**fields, "bitstrings": spec.bitstrings}
    if spec.bitstrings:
        raise PrimitiveError("bitstrings", 'bitstrings applies to "primitive": "sampler" jobs only.')
    if spec.measure_all:
        raise PrimitiveError("measure_all", "An estimator job measures no qubits; leave measure_all false.")
    if spec.method == SimulationMethod.EXTENDED_STABILIZER:
        raise PrimitiveError(
            "method", "The extended_stabilizer method cannot compute expectation values; use another method."
        )
    unmeasured = circuit.remove_final_measurements(inplace=False)
    if "measure" in unmeasured.count_ops():
        raise PrimitiveError(
            "source",
            "An estimator job takes the state before measurement: this circuit measures qubits before its end. "
            "Remove the mid-circuit measurements, or submit it as a sampler job.",
        )
    observables = observables_check(spec.observables, circuit.num_qubits)
    return {
        **fields,
        "observables": [[list(term) for term in terms] for terms in observables],
        "precision": precision_check(spec.precision),
    }


def _check_settings(spec: JobSpec) -> None:
    if not 1 <= spec.shots <= settings.QUANTUM_MAX_SHOTS:
        raise JobValidationError(
            "shots",
            f"A job runs from 1 to at most {settings.QUANTUM_MAX_SHOTS:,} shots; got {spec.shots:,}.",
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
    if spec.processor not in Processor.values:
        raise JobValidationError(
            "processor", f"Unknown processor {spec.processor!r}; choose one of {', '.join(Processor.values)}."
        )
    _check_noise(spec)


def _check_noise(spec: JobSpec) -> None:
    noise = spec.noise or {}
    if "device" in noise:
        name = noise["device"]
        rates = sorted(set(noise) - {"device"})
        if rates:
            raise JobValidationError(
                "noise",
                f"Give either a device or noise rates, not both: the device brings its own calibrated noise "
                f"(remove {', '.join(rates)}).",
            )
        if not isinstance(name, str):
            raise JobValidationError("noise", f"The device must be a name such as fake_manila; got {name!r}.")
        try:
            device(name)
        except KeyError:
            raise JobValidationError("noise", unknown_device_message(name)) from None
        if spec.method not in DEVICE_METHODS:
            raise JobValidationError(
                "method",
                f"The {spec.method} method cannot simulate a device's noise; use {', '.join(DEVICE_METHODS)}.",
            )
        return
    for key, rate in noise.items():
        if key not in NOISE_RATES:
            raise JobValidationError(
                "noise",
                f"Unknown noise setting {key!r}; use depolarizing_1q, depolarizing_2q and readout, "
                'or {"device": "<name>"} for a device\'s calibrated noise.',
            )
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
            raise JobValidationError("noise", f"The noise rate {key} must be a number from 0 to 1; got {rate!r}.")


def job_route(*, processor: str, memory_bytes: int | None, seconds: float) -> str:
    """The first queue of QUANTUM_QUEUES for ``processor`` whose limits the job's estimates fit."""
    candidates = [queue for queue in settings.QUANTUM_QUEUES if queue["processor"] == processor]
    for queue in candidates:
        memory_fits = queue["max_memory_mb"] is None or (memory_bytes or 0) <= queue["max_memory_mb"] * 2**20
        time_fits = queue["max_seconds"] is None or seconds <= queue["max_seconds"]
        if memory_fits and time_fits:
            return queue["name"]
    if not candidates:
        raise JobValidationError(
            "processor", f"No queue of this portal runs {processor.upper()} jobs (QUANTUM_QUEUES); use the CPU."
        )
    limits = "; ".join(_queue_limits(queue) for queue in candidates)
    raise JobValidationError(
        "source",
        f"The job is estimated at {_size(memory_bytes)} and {seconds:,.1f} s; no {processor.upper()} queue takes "
        f"that ({limits}). Use fewer qubits, fewer gates or another method.",
    )


def _queue_limits(queue: dict) -> str:
    memory = "any memory" if queue["max_memory_mb"] is None else f"up to {queue['max_memory_mb']:,} MiB"
    seconds = "any time" if queue["max_seconds"] is None else f"up to {queue['max_seconds']:,} s"
    return f"{queue['name']}: {memory}, {seconds}"


def _size(memory_bytes: int | None) -> str:
    return "little memory" if memory_bytes is None else f"{memory_bytes / 2**20:,.1f} MiB"


def _quotas_check(owner, jobs: list[QuantumJob]) -> None:
    limit = settings.QUANTUM_MAX_QUEUED_PER_USER
    queued = QuantumJob.objects.filter(owner=owner, status=JobStatus.QUEUED).count()
    if queued + len(jobs) > limit:
        raise JobQuotaError(
            f"You have {formatting.count(queued, 'queued job')} and submitted {len(jobs)} more; at most {limit} may "
            "wait at once. "
            "Wait for some to finish or cancel some."
        )
    quota = settings.QUANTUM_DAILY_SHOTS_QUOTA
    used = shots_submitted_today(owner)
    wanted = sum(job.total_shots for job in jobs)
    if used + wanted > quota:
        raise JobQuotaError(
            f"Today you have submitted {used:,} shots and asked for {wanted:,} more; the daily quota is {quota:,} "
            "shots. It resets at midnight UTC."
        )


def _submitted_changes(job: QuantumJob) -> dict:
    changes = {"qubits": job.num_qubits, "shots": job.shots, "method": job.method, "queue": job.queue}
    if job.device:
        changes["device"] = job.device
    if job.uses_primitives:
        changes.update(primitive=job.primitive, parameter_sets=job.sweep_size)
    return changes


def _kind():
    return job_kind("quantum")


def jobs_send(jobs: list[QuantumJob]) -> None:
    """Put the jobs' messages on their queues (the kind's ``send``; again for a job whose worker was lost).

    A job goes to the broker only when a live worker consumes its queue and offers the memory it needs; the others
    stay queued with the reason in ``status_reason`` until such a worker announces itself (jobs_send_waiting).
    """
    from .tasks import run_jobs  # tasks import this module

    workers = workers_live()
    ready, waiting = [], {}
    for job in jobs:
        reason = _waiting_reason(job, workers)
        if reason:
            waiting.setdefault(reason, []).append(job.pk)
        else:
            ready.append(job)
    for reason, ids in waiting.items():
        QuantumJob.objects.filter(pk__in=ids, status=JobStatus.QUEUED).exclude(status_reason=reason).update(
            status_reason=reason
        )
    # Small jobs of one queue and priority travel in messages of up to QUANTUM_BATCH_SIZE; each large one
    # alone, so that one message never holds more than a job timeout of simulation.
    small: dict[tuple[str, int], list[int]] = {}
    for job in ready:
        if _batchable(job):
            small.setdefault((job.queue, job.priority), []).append(job.id)
        else:
            run_jobs.apply_async(([job.id],), queue=_queue(job), priority=_message_priority(job.priority))
    batch = settings.QUANTUM_BATCH_SIZE
    for (queue, priority), ids in small.items():
        for start in range(0, len(ids), batch):
            run_jobs.apply_async(
                (ids[start : start + batch],), queue=queue or _default_queue(), priority=_message_priority(priority)
            )


def _queue(job: QuantumJob) -> str:
    return job.queue or _default_queue()


def _default_queue() -> str:
    return settings.QUANTUM_QUEUES[0]["name"]


def _waiting_reason(job: QuantumJob, workers) -> str:
    """Why no live worker can take ``job`` now; empty when one can."""
    queue = _queue(job)
    # A GPU job needs a worker that found a GPU, whatever queues a CPU-only worker was told to consume.
    on_queue = [worker for worker in workers if queue in worker.queues and worker.processor in ("gpu", job.processor)]
    needed = job.estimated_memory_bytes or 0
    if any(worker.memory_bytes >= needed for worker in on_queue):
        return ""
    if not on_queue:
        return (
            f"Waiting for a worker: no running worker takes the {queue} queue, where its size "
            f"({_size(job.estimated_memory_bytes)}, about {job.estimated_seconds or 0:,.1f} s) sends it. "
            "It starts as soon as one does."
        )
    offered = max(worker.memory_bytes for worker in on_queue)
    return (
        f"Waiting for a worker: it needs {_size(needed)} and the workers of the {queue} queue offer at most "
        f"{_size(offered)}. It starts as soon as a worker with enough memory takes that queue."
    )


def jobs_send_waiting() -> int:
    """Send the queued jobs that waited for a worker, now that one announced itself; returns how many were sent.

    Their reasons are cleared in the same transaction that locks them, so two workers starting together do not
    both send a job (a second message would find it claimed anyway).
    """
    with transaction.atomic():
        waiting = list(
            QuantumJob.objects.select_for_update(skip_locked=True)
            .filter(status=JobStatus.QUEUED)
            .exclude(status_reason="")
            .order_by("-priority", "id")[: MAX_BATCH_JOBS * 10]
        )
        workers = workers_live()
        ready = [job for job in waiting if not _waiting_reason(job, workers)]
        if not ready:
            return 0
        QuantumJob.objects.filter(pk__in=[job.pk for job in ready]).update(status_reason="")
        for job in ready:
            job.status_reason = ""
        refused = partial(lifecycle.jobs_not_queued, _kind(), [job.pk for job in ready])
        enqueue_on_commit(lambda: jobs_send(ready), refused=refused, what="the jobs that waited for a worker")
    return len(ready)


def _batchable(job: QuantumJob) -> bool:
    # A sweep or estimator job is one simulator call of its own (its parameter sets together).
    return job.seed is None and job.num_qubits <= BATCHABLE_MAX_QUBITS and not job.uses_primitives


def _message_priority(priority: int) -> int:
    """Job priority 10 … -10 as the broker's levels 0 (first) … TASK_PRIORITY_LEVELS - 1."""
    low, high = PRIORITY_RANGE
    return message_priority(round((high - priority) * (settings.TASK_PRIORITY_LEVELS - 1) / (high - low)))


# --- Cancel and re-run


def job_cancel(*, job: QuantumJob, actor) -> QuantumJob:
    """Cancel a queued job at once; ask the worker to stop a running one (it reaches cancelled within 2 s)."""
    if not job_may_change(actor, job):
        raise NotPermitted("Only the job's owner (an operator) or an administrator may cancel it.")
    return lifecycle.job_cancel(_kind(), job, actor=actor)


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
        primitive=job.primitive,
        parameter_sets=job.parameter_sets,
        observables=job.observables,
        precision=job.precision,
        bitstrings=job.bitstrings,
        processor=job.processor,
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

    A message delivered again after its worker process died finds its jobs running under its own task id: the
    job layer runs them again, or fails them after QUANTUM_MAX_ATTEMPTS. Returns a summary for the task result.
    """
    jobs = jobs_claim(_kind(), job_ids, task_id=task_id, worker=worker)
    with JobRun(_kind(), jobs, task_id=task_id) as run:
        for group in _groups(jobs):
            _group_run(group, run)
    return f"ran {len(jobs)} of {formatting.count(len(job_ids), 'job')}"


def _groups(jobs: list[QuantumJob]) -> Iterable[list[QuantumJob]]:
    """Jobs that can share one simulator call (same settings, no seed, small) together; the rest alone."""
    shared: dict[tuple, list[QuantumJob]] = {}
    for job in jobs:
        if _batchable(job):
            key = (job.method, job.shots, job.device, job.processor, job.noise_depolarizing_1q)
            key += (job.noise_depolarizing_2q, job.noise_readout)
            shared.setdefault(key, []).append(job)
        else:
            yield [job]
    yield from shared.values()


def _group_run(group: list[QuantumJob], run: JobRun) -> None:
    while group:
        request = {
            "circuits": [(job.source, job.qasm_version, job.measure_all) for job in group],
            "method": group[0].method,
            "shots": group[0].shots,
            "seed": group[0].seed,
            "noise": (group[0].noise_depolarizing_1q, group[0].noise_depolarizing_2q, group[0].noise_readout)
            if group[0].noise and not group[0].device
            else None,
            "device": group[0].device or None,
            "processor": group[0].processor,
        }
        if group[0].uses_primitives:  # alone in its group (see _batchable)
            request.update(_primitive_request(group[0]))
        deadline = time.monotonic() + settings.QUANTUM_JOB_TIMEOUT
        cancelled = partial(run.any_cancelling, list(group))
        try:
            response = simulator_process().run(request, deadline=deadline, cancelled=cancelled)
        except SimulationStopped as stop:
            if stop.reason == "timeout":
                limit = settings.QUANTUM_JOB_TIMEOUT
                _jobs_end(group, error=f"Timed out: a job may run for at most {limit:,} second{pluralize(limit)}.")
                return
            # Cancelled: the jobs that asked for it end cancelled, the rest run again.
            stopped = "Cancelled while running; the simulation stopped."
            ended = jobs_finish(_kind(), {job.pk: Outcome(JobStatus.CANCELLED, stopped) for job in group})
            group = [job for job in group if job.pk not in {done.pk for done in ended}]
            continue
        except SimulatorCrashed as exc:
            _jobs_end(group, error=f"The simulator stopped unexpectedly: {exc}. It may have run out of memory.")
            return
        if "error" in response:
            _jobs_end(group, error=f"The simulation failed: {response['error']}")
        else:
            _jobs_end(group, results=response["results"])
        return


def _primitive_request(job: QuantumJob) -> dict:
    return {
        "primitive": job.primitive,
        "parameter_sets": job.parameter_sets,
        "observables": job.observables,
        "precision": job.precision,
        "bitstrings": job.bitstrings,
    }


def _jobs_end(group: list[QuantumJob], *, results: list[dict] | None = None, error: str = "") -> None:
    """Store the outcome of a simulator call: counts, or the error of the call or of each circuit."""
    outcomes = {}
    for job, result in zip(group, results or [{"error": error}] * len(group), strict=True):
        if "counts" in result or "results" in result:
            fields = {"duration_seconds": result["seconds"]}
            fields.update({key: result[key] for key in ("counts", "results") if key in result})
            outcomes[job.pk] = Outcome(JobStatus.COMPLETED, fields=fields)
        else:
            outcomes[job.pk] = Outcome(JobStatus.FAILED, result["error"])
    jobs_finish(_kind(), outcomes)


# --- The quantum kind's part in the job layer (registered in QuantumConfig.ready)


def job_changes(job: QuantumJob) -> dict:
    """What the audit trail records of a finished job."""
    if job.status == JobStatus.COMPLETED:
        return {"status": job.status, "duration_seconds": round(job.duration_seconds, 6)}
    return {"status": job.status, "error": job.error} if job.status == JobStatus.FAILED else {"status": job.status}


def job_counted(job: QuantumJob) -> None:
    metrics.QUANTUM_JOBS.labels(status=job.status, method=job.method).inc()
    if job.status == JobStatus.COMPLETED:
        metrics.QUANTUM_JOB_DURATION.observe(job.duration_seconds)
        metrics.QUANTUM_SHOTS.inc(job.shots)


def queue_length_record(jobs: list[QuantumJob]) -> None:
    metrics.QUANTUM_QUEUE_LENGTH.set(queue_length())
