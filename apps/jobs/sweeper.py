"""Every worker sweeps for lost jobs: active ones whose worker stopped heartbeating are requeued.

A thread in each worker's main process (``celery worker``, the portal's embedded worker) calls
``jobs_requeue_lost`` every JOBS_SWEEP_INTERVAL seconds; with several workers, row locks (SKIP LOCKED) keep
them from moving the same job twice. A worker that is SIGKILLed takes its sweeper with it, and the others
requeue its jobs.
"""

from __future__ import annotations

import logging
import threading

from celery.signals import worker_init, worker_shutdown
from django.conf import settings
from django.db import connection

logger = logging.getLogger(__name__)

_stops: list[threading.Event] = []


def _sweep_until(stop: threading.Event) -> None:
    from .lifecycle import jobs_requeue_lost

    while not stop.wait(settings.JOBS_SWEEP_INTERVAL):
        try:
            moved = jobs_requeue_lost()
        except Exception:
            logger.exception("the sweep for lost jobs failed; trying again in %s s", settings.JOBS_SWEEP_INTERVAL)
        else:
            if moved:
                logger.warning("jobs whose worker stopped heartbeating, requeued or ended: %s", moved)
        finally:
            connection.close()  # one short connection per sweep, none held between sweeps


def _start(**kwargs) -> None:
    stop = threading.Event()
    _stops.append(stop)
    threading.Thread(target=_sweep_until, args=(stop,), name="jobs-sweeper", daemon=True).start()


def _stop_all(**kwargs) -> None:
    while _stops:
        _stops.pop().set()


def connect() -> None:
    # worker_init: sent by every worker (the `celery worker` command, the embedded one, test workers), before a
    # prefork pool forks its children (which do not inherit the thread).
    worker_init.connect(_start, weak=False, dispatch_uid="jobs-sweeper-start")
    worker_shutdown.connect(_stop_all, weak=False, dispatch_uid="jobs-sweeper-stop")
