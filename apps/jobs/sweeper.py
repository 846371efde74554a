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

from django.conf import settings
from django.db import connection

from .worker_threads import WORKER_CHECK_SECONDS, WorkerThreadStep, worker_running

logger = logging.getLogger(__name__)


def _sweep(stopping: threading.Event, worker) -> None:
    from .lifecycle import jobs_requeue_lost

    swept_at = time.monotonic()
    while not stopping.wait(WORKER_CHECK_SECONDS) and worker_running(worker):
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


class JobsSweeper(WorkerThreadStep):
    """Sweeps for lost jobs from the moment the worker starts until it stops."""

    loop = staticmethod(_sweep)
    thread_name = "jobs-sweeper"
