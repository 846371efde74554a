"""Workers announce what they offer (queues, CPU or GPU, memory) so that routers send work only where it can run.

``WorkerAnnouncer`` is a step of every Celery worker (project/celery.py adds it): when the worker starts, and every
WORKER_ANNOUNCE_INTERVAL seconds while it runs, a thread of its main process writes the worker's row and then lets
each job kind send the jobs that were waiting for such a worker (``JobKind.send_waiting``). The row is deleted when
the worker stops; one that stops without a word (SIGKILL, lost host) counts as gone once it has not been heard from
for WORKER_ANNOUNCE_TIMEOUT seconds.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import timedelta
from functools import cache
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.utils import timezone

from apps.core.versions import software_versions

from .kinds import job_kinds

# Models are imported where used: project/celery.py imports this module before Django's apps are loaded.
from .worker_threads import WORKER_CHECK_SECONDS, WorkerThreadStep, worker_running

logger = logging.getLogger(__name__)


# Present while an NVIDIA driver is loaded (also inside containers given the GPU).
NVIDIA_DRIVER = Path("/proc/driver/nvidia/version")


@cache
def has_gpu() -> bool:
    """Whether this host's simulator can run on a GPU: WORKER_GPU=auto asks qiskit-aer and wants a loaded driver."""
    if settings.WORKER_GPU != "auto":
        return settings.WORKER_GPU == "yes"
    try:
        from qiskit_aer import AerSimulator

        listed = "GPU" in AerSimulator().available_devices()
    except Exception:  # no simulator, or a CUDA build that cannot start: no GPU to offer
        logger.exception("looking for a GPU failed; offering the CPU only")
        return False
    # The CUDA build lists GPU even on a host without one (seen on a machine with no GPU at all).
    return listed and NVIDIA_DRIVER.exists()


def memory_offered() -> int:
    """WORKER_MEMORY_MB, or the host's physical memory."""
    if settings.WORKER_MEMORY_MB:
        return settings.WORKER_MEMORY_MB * 2**20
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def worker_announce(
    *, hostname: str, queues: list[str], started_at, concurrency: int | None = None, pid: int | None = None
):
    """Write (or refresh) this worker's row.

    A drain (apps/jobs/services.worker_drain) stays marked while the same run of the worker announces itself; a
    worker started again under the same name (its row outlived a SIGKILL) consumes its queues again, and so is no
    longer draining.
    """
    from .models import WorkerPresence

    fields = {
        "queues": sorted(queues),
        "processor": "gpu" if has_gpu() else "cpu",
        "memory_bytes": memory_offered(),
        "concurrency": concurrency,
        "pid": pid,
        "versions": software_versions(),
        "started_at": started_at,
        "seen_at": timezone.now(),
    }
    updated = WorkerPresence.objects.filter(hostname=hostname, started_at=started_at).update(**fields)
    if updated:
        return WorkerPresence.objects.get(hostname=hostname)
    presence, _ = WorkerPresence.objects.update_or_create(
        hostname=hostname, defaults={**fields, "draining_since": None, "drained_queues": []}
    )
    return presence


def worker_forget(hostname: str) -> None:
    from .models import WorkerPresence

    WorkerPresence.objects.filter(hostname=hostname).delete()


def workers_live() -> list:
    """The workers (WorkerPresence) heard from within WORKER_ANNOUNCE_TIMEOUT seconds."""
    from .models import WorkerPresence

    cutoff = timezone.now() - timedelta(seconds=settings.WORKER_ANNOUNCE_TIMEOUT)
    return list(WorkerPresence.objects.filter(seen_at__gte=cutoff))


def waiting_jobs_send() -> int:
    """Let each kind send the jobs that waited for a worker; returns how many were sent."""
    sent = 0
    for kind in job_kinds():
        if kind.send_waiting is not None:
            sent += kind.send_waiting()
    return sent


def workers_count_publish() -> None:
    """Set ``opsdeck_workers{queue}`` to the live workers of each configured queue (0 for one nobody consumes)."""
    # Imported here: project/celery.py imports this module before the settings name the metrics directory.
    from .metrics import WORKERS_LIVE

    counts = {queue.name: 0 for queue in settings.CELERY_TASK_QUEUES}
    for presence in workers_live():
        for queue in presence.queues:
            counts[queue] = counts.get(queue, 0) + 1
    for queue, count in counts.items():
        WORKERS_LIVE.labels(queue=queue).set(count)


def _announce_once(worker, started_at) -> None:
    from .lifecycle import jobs_release_held

    # The queues it consumes now: a drain (Celery's cancel_consumer) takes them out of consume_from.
    queues = list(worker.app.amqp.queues.consume_from)
    worker_announce(
        hostname=worker.hostname,
        queues=queues,
        started_at=started_at,
        concurrency=getattr(worker, "concurrency", None),
        pid=os.getpid(),
    )
    sent = waiting_jobs_send()
    if sent:
        logger.info("sent %s jobs that waited for a worker like this one", sent)
    # Maintenance mode may have ended by itself (its end time passed) since the jobs it held were taken.
    released = jobs_release_held()
    if released:
        logger.info("maintenance mode is over: sent %s jobs held during it", released)
    # Last, so that nothing here can hold up the waiting jobs.
    workers_count_publish()


def _announce(stopping: threading.Event, worker) -> None:
    started_at = timezone.now()
    announced_at = 0.0
    try:
        while not stopping.is_set() and worker_running(worker):
            if time.monotonic() - announced_at >= settings.WORKER_ANNOUNCE_INTERVAL:
                announced_at = time.monotonic()
                try:
                    _announce_once(worker, started_at)
                except Exception:
                    logger.exception("announcing this worker failed; trying again")
                finally:
                    connection.close()
            stopping.wait(WORKER_CHECK_SECONDS)
    finally:
        try:
            worker_forget(worker.hostname)
        except Exception:
            logger.exception("this worker's announcement could not be removed; it expires by itself")
        connection.close()


class WorkerAnnouncer(WorkerThreadStep):
    """Announces the worker from its start until it stops."""

    loop = staticmethod(_announce)
    thread_name = "worker-announcer"
