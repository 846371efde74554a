from django.db import models

from .choices import MaintenanceStatus
from .formatting import date_time_text


class MaintenanceRun(models.Model):
    """One run of a scheduled maintenance task, kept as operational evidence."""

    task_name = models.CharField(max_length=200, db_index=True, help_text="Dotted name of the Celery task.")
    celery_task_id = models.CharField(max_length=255, blank=True)
    worker = models.CharField(max_length=255, blank=True, help_text="Host name of the worker that ran it.")
    status = models.CharField(max_length=16, choices=MaintenanceStatus.choices, default=MaintenanceStatus.RUNNING)
    started_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    message = models.TextField(blank=True, help_text="What the run did, or why it failed.")

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["task_name", "-started_at"])]

    def __str__(self) -> str:
        return f"{self.task_name} at {date_time_text(self.started_at)} ({self.status})"

    @property
    def duration_seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()
