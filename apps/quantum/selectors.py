"""Read queries about quantum jobs shared by the API, admin, dashboard and live stream."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from functools import cache
from importlib.metadata import version

from django.conf import settings
from django.core.cache import cache as shared_cache
from django.db import connections
from django.db.models import Count, F, QuerySet, Sum, Window
from django.db.models.functions import RowNumber, TruncMinute
from django.utils import timezone

from apps.core.choices import Role
from apps.core.permissions import READ_ALL_ROLES, has_role
from apps.jobs.choices import JobStatus

from .choices import SimulationMethod
from .circuits import max_qubits_for
from .devices import devices
from .models import QuantumJob

# Columns that can hold megabytes (a program, counts, a sweep's sets and results): lists and streams leave them.
LARGE_FIELDS = ("source", "counts", "gate_counts", "results", "parameter_sets", "observables")
# Throughput for the ETA of queued jobs is measured over this window.
THROUGHPUT_WINDOW = timedelta(minutes=10)


def jobs_visible_to(user) -> QuerySet[QuantumJob]:
    """Everyone's jobs for administrators and viewers; one's own for everyone else."""
    jobs = QuantumJob.objects.all()
    return jobs if has_role(user, *READ_ALL_ROLES) else jobs.filter(owner=user)


def jobs_streamed_to(user) -> QuerySet[QuantumJob]:
    """The jobs of ``jobs_visible_to`` without their large columns: a stream's snapshot shows only their status."""
    return jobs_visible_to(user).defer(*LARGE_FIELDS)


def job_may_change(user, job: QuantumJob) -> bool:
    """Cancel and re-run: the owner (with a writing role) or an administrator."""
    if has_role(user, Role.ADMIN):
        return True
    return job.owner_id == user.pk and has_role(user, Role.OPERATOR)


def queue_positions(jobs) -> dict[int, int]:
    """1-based place in the queue of each queued job given, in one query.

    The queue's order (higher priority first, then earlier submitted) numbers every queued job, and the jobs
    given are picked out of that numbering afterwards: picking them first would number only them. The partial
    index quantum_job_queue_order holds the queued jobs in that order, so numbering them needs no sort.
    """
    queued_ids = [job.id for job in jobs if job.status == JobStatus.QUEUED]
    if not queued_ids:
        return {}
    numbered = (
        QuantumJob.objects.filter(status=JobStatus.QUEUED)
        .annotate(place=Window(RowNumber(), order_by=[F("priority").desc(), F("id").asc()]))
        .values_list("id", "place")
    )
    sql, params = numbered.query.sql_with_params()
    wanted = ", ".join(["%s"] * len(queued_ids))
    # The ORM's own compiled query and placeholders only: every value goes in as a parameter.
    picked = f"SELECT id, place FROM ({sql}) numbered WHERE id IN ({wanted})"  # noqa: S608
    with connections[numbered.db].cursor() as cursor:
        cursor.execute(picked, [*params, *queued_ids])
        return dict(cursor.fetchall())


def queue_length() -> int:
    return QuantumJob.objects.filter(status=JobStatus.QUEUED).count()


def throughput_per_second() -> float:
    """Jobs finished per second over the recent window (0.0 when none)."""
    since = timezone.now() - THROUGHPUT_WINDOW
    finished = QuantumJob.objects.filter(
        finished_at__gte=since, status__in=(JobStatus.COMPLETED, JobStatus.FAILED)
    ).count()
    return finished / THROUGHPUT_WINDOW.total_seconds()


def eta_seconds(position: int | None, throughput: float) -> float | None:
    """Expected wait before a queued job at ``position`` starts, from recent throughput; None if unknown."""
    if position is None or throughput <= 0:
        return None
    return round(position / throughput, 1)


def status_counts(jobs: QuerySet[QuantumJob]) -> dict[str, int]:
    counted = dict(jobs.order_by().values_list("status").annotate(total=Count("id")))
    return {status.value: counted.get(status.value, 0) for status in JobStatus}


def shots_submitted_today(owner) -> int:
    start = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    jobs = QuantumJob.objects.filter(owner=owner, created_at__gte=start).exclude(status=JobStatus.CANCELLED)
    # A sweep runs its shots once per parameter set.
    return jobs.aggregate(total=Sum(F("shots") * F("sweep_size")))["total"] or 0


def jobs_finished_per_minute(jobs: QuerySet[QuantumJob], *, since) -> list[dict]:
    """Jobs that ran to an end (completed or failed, as the ETA's throughput counts) per minute since ``since``."""
    per_minute = (
        jobs.filter(finished_at__gte=since, status__in=(JobStatus.COMPLETED, JobStatus.FAILED))
        .annotate(minute=TruncMinute("finished_at"))
        .order_by()
        .values("minute")
        .annotate(count=Count("id"))
    )
    return [{"minute": row["minute"].isoformat(), "count": row["count"]} for row in per_minute]


def backends() -> list[dict]:
    """Each simulation method with its largest register under the memory limit."""
    memory_limit = settings.QUANTUM_MAX_MEMORY_MB * 2**20
    waiting = queue_length()
    simulators = [
        {
            "kind": "simulator",
            "method": method.value,
            "label": method.label,
            "max_qubits": max_qubits_for(method.value, memory_limit),
            "max_shots": settings.QUANTUM_MAX_SHOTS,
            "max_memory_mb": settings.QUANTUM_MAX_MEMORY_MB,
            "queue_length": waiting,
        }
        for method in SimulationMethod
    ]
    return simulators + [{"kind": "device", **device} for device in devices_catalog()]


def devices_catalog() -> list[dict]:
    """Every device with its qubits, basis gates and coupling map size.

    Reading the 60-odd calibration snapshots takes seconds: the list is built once per installed
    qiskit-ibm-runtime, kept in the shared cache for every process, and in this process's memory.
    """
    return _devices_catalog(_runtime_version())


@cache
def _runtime_version() -> str:
    # Reading a package's metadata takes about a millisecond: once per process.
    return version("qiskit-ibm-runtime")


@cache
def _devices_catalog(runtime_version: str) -> list[dict]:
    key = f"quantum:devices:{runtime_version}"
    catalog = shared_cache.get(key)
    if catalog is None:
        catalog = [asdict(device) for device in devices()]
        for entry in catalog:
            entry["basis_gates"] = list(entry["basis_gates"])
        shared_cache.set(key, catalog, timeout=None)
    return catalog
