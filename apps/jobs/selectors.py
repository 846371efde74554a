"""What the workers and queues view reads: live workers and the jobs they run, queue depths, jobs per minute.

Shared by the staff page, the API (``/api/v1/core/workers/``) and the diagnostics bundle.
"""

from __future__ import annotations

import logging
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fnmatch import fnmatch

from celery import current_app
from django.conf import settings
from django.db.models import Count
from django.utils import timezone

from apps.readonly.services import maintenance_held_job_ids

from .choices import ACTIVE_STATUSES, JobStatus
from .kinds import JobKind, job_kinds
from .models import WorkerPresence

logger = logging.getLogger(__name__)

# The jobs-per-minute window by default, and the widest one a caller may ask for.
RATE_MINUTES_DEFAULT = 15
RATE_MINUTES_MAX = 24 * 60
# Running jobs listed per worker: a worker runs at most its concurrency (a batch of quantum jobs counts each).
RUNNING_JOBS_LISTED = 100


@dataclass(frozen=True)
class RunningJob:
    kind: str
    id: int
    name: str
    status: str
    started_at: datetime | None
    heartbeat_at: datetime | None


@dataclass
class WorkerView:
    """A worker as the view shows it: its announcement, the jobs it holds, and whether it is live or draining."""

    presence: WorkerPresence
    live: bool
    running: list[RunningJob] = field(default_factory=list)

    @property
    def state(self) -> str:
        if not self.live:
            return "silent"
        return "draining" if self.presence.is_draining else "active"


@dataclass(frozen=True)
class QueueView:
    name: str
    depth: int | None  # messages waiting on the broker; None when the broker could not say
    depth_error: str
    finished: int  # jobs of this queue that finished within the window
    per_minute: float
    consumers: list[str]  # live workers taking from it
    held: int = 0  # queued jobs of this queue held while maintenance mode is on (not on the broker any more)


def worker_of(job_worker: str) -> str:
    """The worker hostname in a job's ``worker`` field ("celery@host pid 42" or "celery@host")."""
    return job_worker.split(" ", 1)[0]


def _running_jobs() -> dict[str, list[RunningJob]]:
    """Active jobs of every kind, by the hostname of the worker that claimed them (lifecycle.jobs_claim)."""
    by_worker: dict[str, list[RunningJob]] = {}
    for kind in job_kinds():
        jobs = (
            kind.model.objects.filter(status__in=ACTIVE_STATUSES)
            .exclude(worker="")
            .select_related(*kind.select_related)
            .order_by("started_at", "id")[: RUNNING_JOBS_LISTED * 10]
        )
        for job in jobs:
            listed = by_worker.setdefault(worker_of(job.worker), [])
            if len(listed) < RUNNING_JOBS_LISTED:
                listed.append(RunningJob(kind.name, job.pk, str(job), job.status, job.started_at, job.heartbeat_at))
    return by_worker


def workers_overview(*, now: datetime | None = None) -> list[WorkerView]:
    """Every announced worker (live ones, and those silent for less than an hour before their row expires),
    with the jobs each runs."""
    now = now or timezone.now()
    live_since = now - timedelta(seconds=settings.WORKER_ANNOUNCE_TIMEOUT)
    running = _running_jobs()
    return [
        WorkerView(presence, presence.seen_at >= live_since, running.get(presence.hostname, []))
        for presence in WorkerPresence.objects.filter(seen_at__gte=now - timedelta(hours=1))
    ]


def worker_live(hostname: str) -> WorkerPresence | None:
    cutoff = timezone.now() - timedelta(seconds=settings.WORKER_ANNOUNCE_TIMEOUT)
    return WorkerPresence.objects.filter(hostname=hostname, seen_at__gte=cutoff).first()


def queue_names() -> list[str]:
    """The queues the portal sends work to (CELERY_TASK_QUEUES), in their configured order."""
    return [queue.name for queue in settings.CELERY_TASK_QUEUES]


def queue_depths(names: list[str]) -> dict[str, tuple[int | None, str]]:
    """Messages waiting in each queue, from the broker: ``{name: (count, "")}``, or ``(None, why)``.

    A passive declare asks without creating anything: RabbitMQ answers with its ready messages; kombu's Redis
    transport sums the queue's priority lists. Either answers NOT_FOUND for a queue that holds nothing yet (Redis
    drops an empty list; RabbitMQ has not seen the queue declared), which is a depth of 0; RabbitMQ then closes
    the channel, hence one channel per queue.
    """
    depths: dict[str, tuple[int | None, str]] = {}
    timeout = settings.HEALTH_CHECK_TIMEOUT_SECONDS
    try:
        with current_app.connection_for_read() as connection:
            connection.ensure_connection(max_retries=1, timeout=timeout)
            for name in names:
                channel = connection.channel()
                try:
                    depths[name] = (channel.queue_declare(queue=name, passive=True).message_count, "")
                except Exception as exc:
                    if "NOT_FOUND" in str(exc):
                        depths[name] = (0, "")
                    else:
                        depths[name] = (None, _short(exc, "the broker did not answer"))
                finally:
                    with suppress(Exception):  # a channel the broker closed already
                        channel.close()
    except Exception as exc:
        logger.warning("could not read queue depths: %s", exc)
        reason = _short(exc, "the broker is unreachable")
        for name in names:
            depths.setdefault(name, (None, reason))
    return depths


def _short(exc: Exception, fallback: str) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else fallback


def kind_queue(kind: JobKind) -> str | None:
    """The queue a kind's tasks go to by CELERY_TASK_ROUTES (``<app label>.*``); None when its jobs carry their
    own ``queue`` field (quantum jobs, routed by size)."""
    if any(f.name == "queue" for f in kind.model._meta.get_fields()):
        return None
    task_name = f"{kind.model._meta.app_label}.task"
    for pattern, route in settings.CELERY_TASK_ROUTES.items():
        if fnmatch(task_name, pattern):
            return route["queue"]
    return settings.CELERY_TASK_DEFAULT_QUEUE


def jobs_finished_per_queue(*, minutes: int, now: datetime | None = None) -> dict[str, int]:
    """How many jobs finished (completed, failed or cancelled after running) per queue in the last ``minutes``."""
    since = (now or timezone.now()) - timedelta(minutes=minutes)
    counts: dict[str, int] = {}
    for kind in job_kinds():
        finished = kind.model.objects.filter(finished_at__gte=since).exclude(status=JobStatus.QUEUED)
        queue = kind_queue(kind)
        if queue is None:
            for row in finished.values("queue").annotate(n=Count("id")):
                name = row["queue"] or settings.CELERY_TASK_DEFAULT_QUEUE
                counts[name] = counts.get(name, 0) + row["n"]
        else:
            counts[queue] = counts.get(queue, 0) + finished.count()
    return counts


@dataclass(frozen=True)
class HeldJobs:
    """Queued jobs a worker took off the broker while maintenance mode was on (apps.readonly keeps them): the
    broker shows them as gone, yet they start when maintenance ends."""

    total: int = 0
    per_queue: dict[str, int] = field(default_factory=dict)
    per_kind: dict[str, int] = field(default_factory=dict)


def held_jobs_overview() -> HeldJobs:
    """How many held jobs are still queued, per queue (the kind's routed queue, or a quantum job's own ``queue``)
    and per kind. A held job cancelled meanwhile no longer counts: it will not start."""
    per_queue: dict[str, int] = {}
    per_kind: dict[str, int] = {}
    known = {kind.name: kind for kind in job_kinds()}
    for kind_name, job_ids in maintenance_held_job_ids().items():
        kind = known.get(kind_name)
        if kind is None:
            continue
        queued = kind.model.objects.filter(pk__in=job_ids, status=JobStatus.QUEUED)
        queue = kind_queue(kind)
        if queue is None:
            rows = queued.values("queue").annotate(n=Count("id")).values_list("queue", "n")
        else:
            rows = [(queue, queued.count())]
        for name, count in rows:
            if count:
                name = name or settings.CELERY_TASK_DEFAULT_QUEUE
                per_queue[name] = per_queue.get(name, 0) + count
                per_kind[kind_name] = per_kind.get(kind_name, 0) + count
    return HeldJobs(sum(per_kind.values()), per_queue, per_kind)


def queues_overview(*, minutes: int = RATE_MINUTES_DEFAULT, workers: list[WorkerView] | None = None) -> list[QueueView]:
    """Each queue with its depth on the broker, its rate over the last ``minutes`` and the live workers taking
    from it."""
    names = queue_names()
    workers = workers if workers is not None else workers_overview()
    depths = queue_depths(names)
    finished = jobs_finished_per_queue(minutes=minutes)
    held = held_jobs_overview().per_queue
    return [
        QueueView(
            name=name,
            depth=depths[name][0],
            depth_error=depths[name][1],
            finished=finished.get(name, 0),
            per_minute=round(finished.get(name, 0) / minutes, 2),
            consumers=[view.presence.hostname for view in workers if view.live and name in view.presence.queues],
            held=held.get(name, 0),
        )
        for name in names
    ]
