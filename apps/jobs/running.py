"""While a worker runs jobs: the heartbeat that proves it alive, the watch for a cancel, throttled progress."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import connection
from django.utils import timezone

from .choices import JobStatus
from .kinds import JobKind
from .lifecycle import job_heartbeat, jobs_cancelling
from .publishing import jobs_publish

logger = logging.getLogger(__name__)

# How often a running job's worker looks for a cancel: a cancelled job stops well within 2 s.
CANCEL_POLL_SECONDS = 0.5
PROGRESS_INTERVAL_SECONDS = 0.5


class JobRun:
    """The jobs one task runs, as a context manager: a thread heartbeats them every JOBS_HEARTBEAT_INTERVAL
    seconds and, once one of them is being cancelled, sets ``cancel_requested``, adds its id to ``cancelling``
    and calls the kind's hard-stop hooks.

    A worker that dies stops heartbeating: another worker's sweeper then requeues its jobs, unless the broker
    hands the task's message to another worker first (RabbitMQ does at once), whose claim runs them again. Either
    way the audit trail records the requeue once (jobs_claim, jobs_requeue_lost).
    """

    def __init__(self, kind: JobKind, jobs: list, *, task_id: str):
        self.kind, self.jobs, self.task_id = kind, list(jobs), task_id
        self.cancel_requested = threading.Event()
        self.cancelling: frozenset[int] = frozenset()
        self._stop_hooks: list[Callable[[], None]] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name=f"job-heartbeat-{kind.name}", daemon=True)
        self._progress_sent_at = 0.0
        self._watching = threading.Lock()
        self._paused = False

    def __enter__(self) -> JobRun:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._done.set()
        self._thread.join(timeout=10)

    def on_cancel(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` (stop a subprocess, say) from the watcher thread as soon as a cancel is noticed."""
        self._stop_hooks.append(hook)
        if self.cancel_requested.is_set():
            hook()

    def any_cancelling(self, jobs: list) -> bool:
        """Whether one of ``jobs`` (some of this run's) is being cancelled."""
        return not self.cancelling.isdisjoint(job.pk for job in jobs)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """No heartbeat and no cancel watch inside: for work that replaces the tables the watcher would touch (a
        restore). The first heartbeat is written as soon as it ends."""
        with self._watching:
            self._paused = True
        try:
            yield
        finally:
            self._paused = False

    def _watch(self) -> None:
        beat_at = time.monotonic()
        while not self._done.wait(CANCEL_POLL_SECONDS):
            with self._watching:
                if self._paused:
                    beat_at = 0.0
                    continue
                try:
                    beat_at = self._watch_once(beat_at)
                except Exception:
                    logger.exception("the heartbeat of %s jobs %s failed", self.kind.name, self._ids())
                    connection.close()
        connection.close()

    def _ids(self) -> list[int]:
        return [job.pk for job in self.jobs]

    def _watch_once(self, beat_at: float) -> float:
        """Heartbeat when it is time, and notice new cancels; returns when the last heartbeat was written."""
        if time.monotonic() - beat_at >= settings.JOBS_HEARTBEAT_INTERVAL:
            job_heartbeat(self.kind, self._ids(), task_id=self.task_id)
            beat_at = time.monotonic()
        cancelling = frozenset(jobs_cancelling(self.kind, self._ids()))
        if cancelling - self.cancelling:
            self.cancelling = cancelling
            self.cancel_requested.set()
            for hook in self._stop_hooks:
                hook()
        self.cancelling = cancelling
        return beat_at

    def progress(self, job, done: int, total: int | None = None, *, force: bool = False) -> None:
        """Save and publish how far ``job`` got, at most every half second unless ``force``d.

        Nothing is published once the job is being cancelled: "running" must not follow "cancelling".
        """
        job.progress_done = done
        if total is not None:
            job.progress_total = total
        if not force and time.monotonic() - self._progress_sent_at < PROGRESS_INTERVAL_SECONDS:
            return
        self._progress_sent_at = time.monotonic()
        job.updated_at = timezone.now()
        updated = self.kind.model.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(
            progress_done=job.progress_done, progress_total=job.progress_total, updated_at=job.updated_at
        )
        if updated:
            jobs_publish(self.kind, [job])
