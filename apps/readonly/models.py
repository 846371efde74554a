"""Maintenance mode's state: the switch, the windows planned ahead, and the jobs held while it is on.

The state lives in the database so that every web process and worker, on every host, sees the same switch.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q


class MaintenanceMode(models.Model):
    """The switch: one row (pk 1), written only by apps/readonly/services.py."""

    SINGLETON_PK = 1

    enabled = models.BooleanField(default=False)
    message = models.CharField(max_length=500, blank=True, help_text="Shown on the banner and in every refusal.")
    until = models.DateTimeField(
        null=True, blank=True, help_text="When it ends by itself; empty: until someone turns it off."
    )
    since = models.DateTimeField(null=True, blank=True, help_text="When it was last turned on.")
    changed_at = models.DateTimeField(null=True, blank=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = "switch"
        verbose_name_plural = "switch"

    def __str__(self) -> str:
        return "Maintenance switch"


class MaintenanceWindow(models.Model):
    """A planned period of maintenance mode: announced on the banner beforehand, on by itself between the times."""

    starts_at = models.DateTimeField(db_index=True)
    ends_at = models.DateTimeField(db_index=True)
    message = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["starts_at", "id"]
        verbose_name = "maintenance window"
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=F("starts_at")), name="readonly_window_ends_after_start")
        ]

    def __str__(self) -> str:
        return f"Maintenance window #{self.pk}"


class HeldJob(models.Model):
    """A queued job a worker would have claimed while maintenance mode was on: its message was taken off the
    broker, so the job layer sends it again once maintenance ends (apps.jobs.lifecycle.jobs_release_held)."""

    kind = models.CharField(max_length=50)
    job_id = models.BigIntegerField()
    held_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "job_id"], name="readonly_held_job_once")]

    def __str__(self) -> str:
        return f"{self.kind} job #{self.job_id}"
