from django.db import models


class JobStatus(models.TextChoices):
    """The one lifecycle of every kind of job: quantum, inference, report, backup."""

    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLING = "cancelling", "Cancelling"
    CANCELLED = "cancelled", "Cancelled"


# States a job never leaves.
FINISHED_STATUSES = (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)
# States in which a worker holds the job (and heartbeats it).
ACTIVE_STATUSES = (JobStatus.RUNNING, JobStatus.CANCELLING)
UNFINISHED_STATUSES = (JobStatus.QUEUED, *ACTIVE_STATUSES)
