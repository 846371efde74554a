"""Read queries of the model registry shared by the API, admin, live stream and reports."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.core.permissions import READ_ALL_ROLES, has_role

from .choices import FINISHED_INFERENCE_STATUSES
from .models import InferenceJob, ModelVersion


def inference_jobs_visible_to(user) -> QuerySet[InferenceJob]:
    """Everyone's jobs for administrators and viewers; one's own for everyone else."""
    jobs = InferenceJob.objects.all()
    return jobs if has_role(user, *READ_ALL_ROLES) else jobs.filter(owner=user)


SNAPSHOT_RECENT_JOBS = 50


def inference_jobs_snapshot(user) -> list[dict]:
    """Update messages of the user's recent inference jobs and every unfinished one, newest first."""
    visible = inference_jobs_visible_to(user).select_related("owner").order_by("-id")
    unfinished = visible.exclude(status__in=FINISHED_INFERENCE_STATUSES)
    jobs = {job.id: job for job in [*visible[:SNAPSHOT_RECENT_JOBS], *unfinished[: SNAPSHOT_RECENT_JOBS * 10]]}
    return [inference_job_update_message(jobs[job_id]) for job_id in sorted(jobs, reverse=True)]


def versions_compared(model) -> list[ModelVersion]:
    """A model's versions with their metrics, newest first, for side-by-side comparison."""
    return list(model.versions.order_by("-version").prefetch_related("aliases"))


def inference_job_update_message(job: InferenceJob) -> dict:
    """The live ``job.update`` message of an inference job (README: "Live job updates"); load ``owner``."""
    return {
        "type": "job.update",
        "kind": "inference",
        "id": job.id,
        "name": job.name,
        "owner": job.owner.get_username(),
        "status": job.status,
        "updated_at": job.updated_at.isoformat() if job.updated_at else None,
        "queue_position": None,
        "error": job.error or None,
        "progress": {"done": job.rows_done, "total": job.rows_total},
    }
