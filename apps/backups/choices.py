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
