"""What every job has, whatever it runs: the abstract model each kind's table extends."""

from django.conf import settings
from django.db import models

from .choices import FINISHED_STATUSES, JobStatus


class Job(models.Model):
    """A unit of long work run by a worker: queued, claimed, heartbeated, finished (or requeued when lost).

    Kinds override ``owner`` to give it a reverse name, or to allow none (scheduled work).
    """

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=12, choices=JobStatus.choices, default=JobStatus.QUEUED)
    priority = models.SmallIntegerField(default=0, help_text="Higher runs first (-10 … 10).")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    queued_at = models.DateTimeField(null=True, blank=True, help_text="When it was last put in the queue.")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True, help_text="Run time on the worker.")
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Runs started (a lost worker's run counts).")
    max_attempts = models.PositiveSmallIntegerField(default=3, help_text="Runs allowed before it fails for good.")
    worker = models.CharField(max_length=200, blank=True)
    celery_task_id = models.CharField(max_length=64, blank=True, help_text="The task message that holds the job.")
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="Last sign of life from its worker while running."
    )
    progress_done = models.BigIntegerField(default=0, help_text="Units of work done (rows, bytes, percent…).")
    progress_total = models.BigIntegerField(null=True, blank=True, help_text="Units of work in all, when known.")
    error = models.TextField(blank=True)

    class Meta:
        abstract = True

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES


class WorkerPresence(models.Model):
    """A running Celery worker as it announced itself: what it offers, and when it was last heard from.

    Written when the worker starts and every WORKER_ANNOUNCE_INTERVAL seconds while it runs (apps/jobs/workers.py),
    deleted when it stops. Routers send work only where a live worker can take it.
    """

    hostname = models.CharField(max_length=200, unique=True)
    queues = models.JSONField(default=list, help_text="The queues it consumes.")
    processor = models.CharField(max_length=8, default="cpu", help_text="cpu, or gpu when it has one.")
    memory_bytes = models.BigIntegerField(help_text="Memory it offers to one job.")
    concurrency = models.PositiveIntegerField(null=True, blank=True, help_text="Jobs it runs at once (pool size).")
    pid = models.PositiveIntegerField(null=True, blank=True, help_text="Process id of its main process.")
    versions = models.JSONField(default=dict, blank=True, help_text="Python and package versions it runs.")
    started_at = models.DateTimeField()
    seen_at = models.DateTimeField(db_index=True)
    # Set when staff drained it (apps/jobs/services.worker_drain): it finishes what it runs and takes nothing more.
    draining_since = models.DateTimeField(null=True, blank=True)
    drained_queues = models.JSONField(default=list, blank=True, help_text="The queues it was told to stop taking.")

    class Meta:
        ordering = ["hostname"]

    def __str__(self) -> str:
        return self.hostname

    @property
    def is_draining(self) -> bool:
        return self.draining_since is not None
