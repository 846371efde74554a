"""Every worker process sweeps for lost jobs: active ones whose worker stopped heartbeating are requeued.

A thread in each worker's main process (``celery worker`` and the portal's embedded worker) calls
``jobs_requeue_lost`` every JOBS_SWEEP_INTERVAL seconds; with several workers, row locks (SKIP LOCKED) keep
them from moving the same job twice. A worker that is SIGKILLed takes its sweeper with it, and the others
requeue its jobs.
"""

from __future__ import annotations

import logging
import threading

from celery.signals import worker_ready, worker_shutdown
from django.conf import settings
from django.db import close_old_connections, connection

logger = logging.getLogger(__name__)

_stop = threading.Event()


def _sweep_forever() -> None:
    from .lifecycle import jobs_requeue_lost

    while not _stop.wait(settings.JOBS_SWEEP_INTERVAL):
        close_old_connections()
        try:
            moved = jobs_requeue_lost()
        except Exception:
            logger.exception("the sweep for lost jobs failed; trying again in %s s", settings.JOBS_SWEEP_INTERVAL)
            connection.close()
            continue
        if moved:
            logger.warning("jobs whose worker stopped heartbeating, requeued or ended: %s", moved)
    connection.close()


def _start(**kwargs) -> None:
    _stop.clear()
    threading.Thread(target=_sweep_forever, name="jobs-sweeper", daemon=True).start()


def _stop_sweeping(**kwargs) -> None:
    _stop.set()


def connect() -> None:
    worker_ready.connect(_start, weak=False, dispatch_uid="jobs-sweeper-start")
    worker_shutdown.connect(_stop_sweeping, weak=False, dispatch_uid="jobs-sweeper-stop")
