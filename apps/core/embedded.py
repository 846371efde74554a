"""Celery worker and beat running as threads inside the portal process.

Used by ``runportal`` when no REDIS_URL is set: the in-memory broker only
reaches consumers in the same process, so the worker and beat live here.
"""

from __future__ import annotations

import logging
import socket
import threading

from celery import Celery
from celery.beat import EmbeddedService
from celery.worker import state as worker_state

logger = logging.getLogger(__name__)

# Beat sleeps at most this long between schedule checks, which also bounds
# how long stopping it takes.
BEAT_MAX_INTERVAL_SECONDS = 1
STOP_TIMEOUT_SECONDS = 15


class EmbeddedCelery:
    """A thread-pool worker consuming every queue, plus the database beat scheduler."""

    def __init__(self, app: Celery, *, concurrency: int):
        self.app = app
        self.worker = app.WorkController(
            pool="threads",
            concurrency=concurrency,
            hostname=f"embedded@{socket.gethostname()}",
            queues=[queue.name for queue in app.conf.task_queues],
            without_heartbeat=True,
            without_mingle=True,
            without_gossip=True,
        )
        self.worker_thread = threading.Thread(target=self.worker.start, name="celery-worker", daemon=True)
        # EmbeddedService ignores beat_scheduler unless told: without this it
        # would run the file-based scheduler instead of the database one.
        self.beat = EmbeddedService(
            app, thread=True, max_interval=BEAT_MAX_INTERVAL_SECONDS, scheduler_cls=app.conf.beat_scheduler
        )

    def start(self) -> None:
        self.worker_thread.start()
        self.beat.start()
        logger.info("embedded Celery worker (%d threads) and beat started", self.worker.concurrency)

    def stop(self) -> None:
        """Stop beat, then let the worker finish its running tasks and exit."""
        self.beat.stop()
        worker_state.should_terminate = 0
        self.worker_thread.join(STOP_TIMEOUT_SECONDS)
        if self.worker_thread.is_alive():
            logger.warning("embedded Celery worker still busy after %ss; exiting anyway", STOP_TIMEOUT_SECONDS)
        else:
            logger.info("embedded Celery worker and beat stopped")
