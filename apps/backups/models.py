"""Database backups: where each one is, what it holds, and how its verification went; the jobs that make,
verify and restore them."""

from django.conf import settings
from django.db import models

from apps.core.formatting import date_time_text
from apps.jobs.models import Job

from .choices import BackupOperation, BackupStatus, BackupTrigger


class Backup(models.Model):
    status = models.CharField(max_length=16, choices=BackupStatus.choices, default=BackupStatus.RUNNING)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    size_bytes = models.BigIntegerField(null=True, blank=True, help_text="Size of the stored, encrypted file.")
    plain_bytes = models.BigIntegerField(null=True, blank=True, help_text="Size of the dump before compression.")
    sha256 = models.CharField("SHA-256", max_length=64, blank=True, help_text="SHA-256 of the stored file.")
    compression = models.CharField(max_length=8)
    key_id = models.CharField(max_length=32, help_text="Fingerprint of the encryption key (never the key).")
    storage_name = models.CharField(max_length=100, help_text="The Django storage the file is in.")
    path = models.CharField(max_length=300, blank=True, help_text="The file's name in that storage.")
    database_engine = models.CharField(max_length=20)
    server_version = models.CharField(max_length=100, blank=True)
    migrations = models.JSONField(default=dict, blank=True, help_text="Latest applied migration per app.")
    row_counts = models.JSONField(default=dict, blank=True, help_text="Rows per table when the backup was taken.")
    trigger = models.CharField(max_length=10, choices=BackupTrigger.choices)
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    verified_at = models.DateTimeField(null=True, blank=True)
    verification = models.JSONField(default=dict, blank=True, help_text="The report of the last verification.")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        # Each offered ordering has its (field, id) index, and each filter one that leads to the default order.
        indexes = [
            models.Index(fields=["started_at", "id"], name="backup_started_id"),
            models.Index(fields=["size_bytes", "id"], name="backup_size_id"),
            models.Index(fields=["status", "-started_at", "-id"], name="backup_status_recent"),
            models.Index(fields=["trigger", "-started_at", "-id"], name="backup_trigger_recent"),
        ]

    def __str__(self) -> str:
        return f"Backup #{self.pk} of {date_time_text(self.started_at)}" if self.started_at else "Backup"


class BackupJob(Job):
    """A backup made, verified or restored by a worker. The job has the lifecycle; the backup the result."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="backup_jobs",
        help_text="The administrator who asked; none for the schedule.",
    )
    operation = models.CharField(max_length=8, choices=BackupOperation.choices)
    backup = models.ForeignKey(
        Backup,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="jobs",
        help_text="The backup verified or restored; for a create job, the one it made (set once it has a row).",
    )
    cancellable = models.BooleanField(
        default=True, help_text="False once pg_restore has started: from then on the job runs to its end."
    )

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["status", "-id"], name="backupjob_status_recent"),
            models.Index(fields=["operation", "-id"], name="backupjob_operation_recent"),
            models.Index(fields=["created_at", "id"], name="backupjob_created_id"),
        ]

    def __str__(self) -> str:
        return f"Backup job #{self.pk}"

    @property
    def name(self) -> str:
        """What the job does, as the stream and the admin show it."""
        if self.backup_id is None:
            return f"{self.get_operation_display()} a backup"
        return f"{self.get_operation_display()} backup #{self.backup_id}"
