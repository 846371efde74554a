"""A thread that runs beside a Celery worker's main loop from the worker's start until it stops."""

from __future__ import annotations

import threading
from collections.abc import Callable

from celery import bootsteps

# How often such a thread looks whether its worker still runs (some ways of stopping a worker skip its steps' stop).
WORKER_CHECK_SECONDS = 0.5


def worker_running(worker) -> bool:
    return worker.blueprint.state in (None, bootsteps.RUN)


class WorkerThreadStep(bootsteps.StartStopStep):
    """Runs ``loop(stopping, worker)`` in a daemon thread named ``thread_name``; ``stopping`` is set at stop."""

    loop: Callable[[threading.Event, object], None]
    thread_name: str

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self, worker) -> None:
        self.stopping.clear()
        self.thread = threading.Thread(
            target=type(self).loop, args=(self.stopping, worker), name=self.thread_name, daemon=True
        )
        self.thread.start()

    def stop(self, worker) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout=30)

    shutdown = stop
