"""Read queries of the model registry shared by the API, admin, live stream and reports."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.core.permissions import READ_ALL_ROLES, has_role

from .models import InferenceJob, ModelVersion


def inference_jobs_visible_to(user) -> QuerySet[InferenceJob]:
    """Everyone's jobs for administrators and viewers; one's own for everyone else."""
    jobs = InferenceJob.objects.all()
    return jobs if has_role(user, *READ_ALL_ROLES) else jobs.filter(owner=user)


def versions_compared(model) -> list[ModelVersion]:
    """A model's versions with their metrics, newest first, for side-by-side comparison."""
    return list(model.versions.order_by("-version").prefetch_related("aliases"))
