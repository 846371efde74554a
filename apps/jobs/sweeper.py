"""Every worker sweeps for lost jobs: active ones whose worker stopped heartbeating are requeued.

``JobsSweeper`` is a step of every Celery worker (``celery worker``, the portal's embedded worker, test workers;
project/celery.py adds it): while the worker runs, a thread of its main process calls ``jobs_requeue_lost`` every
JOBS_SWEEP_INTERVAL seconds. With several workers, row locks (SKIP LOCKED) keep them from moving the same job
twice. A worker that is SIGKILLed takes its sweeper with it, and the others requeue its jobs, unless the broker
redelivered their message to another worker first (RabbitMQ does so at once): that worker's claim then records
the requeue in the audit trail, so that each lost run is audited once whichever broker brings it back.
"""

from __future__ import annotations

import logging
import threading
import time

from celery import bootsteps
from django.conf import settings
from django.db import connection

logger = logging.getLogger(__name__)


# How often the sweeper looks whether its worker still runs (some ways of stopping a worker skip its steps' stop).
WORKER_CHECK_SECONDS = 0.5


def _sweep(stopping: threading.Event, worker) -> None:
    from .lifecycle import jobs_requeue_lost

    swept_at = time.monotonic()
    while not stopping.wait(WORKER_CHECK_SECONDS) and worker.blueprint.state in (None, bootsteps.RUN):
        if time.monotonic() - swept_at < settings.JOBS_SWEEP_INTERVAL:
            continue
        swept_at = time.monotonic()
        try:
            moved = jobs_requeue_lost()
        except Exception:
            logger.exception("the sweep for lost jobs failed; trying again in %s s", settings.JOBS_SWEEP_INTERVAL)
        else:
            if moved:
                logger.warning("jobs whose worker stopped heartbeating, requeued or ended: %s", moved)
        finally:
            connection.close()  # one short connection per sweep, none held between sweeps


class JobsSweeper(bootsteps.StartStopStep):
    """Sweeps for lost jobs from the moment the worker starts until it stops."""

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self, worker) -> None:
        self.stopping.clear()
        self.thread = threading.Thread(target=_sweep, args=(self.stopping, worker), name="jobs-sweeper", daemon=True)
        self.thread.start()

    def stop(self, worker) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout=30)

    shutdown = stop
