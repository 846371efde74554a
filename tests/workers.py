"""A Celery worker started in the middle of a browser test, so that a page can be watched before its work runs."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from celery.contrib.testing.worker import start_worker

from project.celery import app as celery_app


@contextmanager
def worker_running() -> Iterator[None]:
    """A Celery worker started now, in a thread of its own: Django refuses database work (which the worker's
    start-up does) in the thread where Playwright's event loop runs."""
    started, stop = threading.Event(), threading.Event()

    def run() -> None:
        with start_worker(
            celery_app,
            pool="threads",
            concurrency=1,
            perform_ping_check=False,
            queues=[queue.name for queue in celery_app.conf.task_queues],
            shutdown_timeout=30,
            without_heartbeat=False,
        ):
            started.set()
            stop.wait()

    thread = threading.Thread(target=run, name="browser-test-worker")
    thread.start()
    if not started.wait(60):
        stop.set()
        pytest.fail("The Celery worker did not start within 60 s.")
    try:
        yield
    finally:
        stop.set()
        thread.join(60)


def worker_announced(
    hostname: str = "announced@test", queues: tuple[str, ...] = ("quantum",), memory_mb: int = 1024, processor="cpu"
):
    """The row a running worker keeps fresh, written once: the router takes such a worker to be there (for tests of
    the submitting side, whose jobs need not run)."""
    from django.utils import timezone

    from apps.jobs.models import WorkerPresence

    now = timezone.now()
    presence, _ = WorkerPresence.objects.update_or_create(
        hostname=hostname,
        defaults={
            "queues": list(queues),
            "processor": processor,
            "memory_bytes": memory_mb * 2**20,
            "started_at": now,
            "seen_at": now,
        },
    )
    return presence
