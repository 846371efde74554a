from django.db import models


class BackupStatus(models.TextChoices):
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    VERIFIED = "verified", "Verified by a restore"
    VERIFY_FAILED = "verify_failed", "Verification failed"
    PRUNED = "pruned", "Pruned"


class BackupTrigger(models.TextChoices):
    USER = "user", "A user"
    SCHEDULE = "schedule", "The schedule"
    SAFETY = "safety", "Safety backup before a restore"


class BackupOperation(models.TextChoices):
    """What a backup job does: the job has the lifecycle, the backup the result."""

    CREATE = "create", "Create"
    VERIFY = "verify", "Verify"
    RESTORE = "restore", "Restore"
