"""Read queries of the model registry shared by the API, admin, portal pages, live stream and reports."""

from __future__ import annotations

from django.db.models import DateTimeField, Max, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce, Greatest

from apps.core.permissions import READ_ALL_ROLES, has_role

from .models import AliasChange, InferenceJob, ModelAlias, ModelVersion, RegisteredModel


def inference_jobs_visible_to(user) -> QuerySet[InferenceJob]:
    """Everyone's jobs for administrators and viewers; one's own for everyone else."""
    jobs = InferenceJob.objects.all()
    return jobs if has_role(user, *READ_ALL_ROLES) else jobs.filter(owner=user)


def versions_compared(model) -> list[ModelVersion]:
    """A model's versions with their metrics, newest first, for side-by-side comparison."""
    versions = model.versions.order_by("-version").select_related("parent")
    return list(versions.prefetch_related("aliases", "canary_aliases"))


def alias_history(model: RegisteredModel, alias: str | None = None) -> QuerySet[AliasChange]:
    """Changes of the model's aliases (or of one), newest first, with who made them."""
    changes = model.alias_changes.select_related("actor").order_by("-id")
    return changes.filter(alias=alias) if alias else changes


def _latest(rows: QuerySet, field: str) -> Subquery:
    return Subquery(rows.filter(model=OuterRef("pk")).order_by(f"-{field}").values(field)[:1])


def models_listed(*, search: str = "", task: str = "") -> QuerySet[RegisteredModel]:
    """Models by name with owner, aliases, ``latest_version`` and ``updated_at``: the last registration, upload or
    alias move. ``search`` matches part of the name, description or a tag."""
    models = RegisteredModel.objects.select_related("owner").prefetch_related(
        Prefetch("aliases", queryset=ModelAlias.objects.select_related("version", "canary").order_by("name"))
    )
    if search:
        models = models.filter(Q(name__icontains=search) | Q(description__icontains=search) | Q(tags__icontains=search))
    if task:
        models = models.filter(task=task)
    # Coalesce: PostgreSQL's GREATEST skips NULLs but SQLite's returns NULL (a model without versions or aliases).
    return models.annotate(
        latest_version=Max("versions__version"),
        updated_at=Greatest(
            "created_at",
            Coalesce(_latest(ModelVersion.objects, "created_at"), "created_at", output_field=DateTimeField()),
            Coalesce(_latest(ModelAlias.objects, "updated_at"), "created_at", output_field=DateTimeField()),
        ),
    ).order_by("name")


def model_jobs_visible_to(user, model: RegisteredModel, *, limit: int) -> list[InferenceJob]:
    """The newest inference jobs of ``model`` that ``user`` may see."""
    # By version ids, as the API's model filter does: PostgreSQL plans that better than the join.
    versions = list(model.versions.values_list("id", flat=True))
    jobs = inference_jobs_visible_to(user).filter(version_id__in=versions).select_related("owner", "version")
    return list(jobs.order_by("-id")[:limit])
