"""Registered models, their versions and aliases, and batch inference / evaluation jobs."""

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

from apps.jobs.models import Job

from .choices import InferenceKind, ModelTask, VersionStatus

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,99}$"
name_validator = RegexValidator(
    NAME_PATTERN, "Use 1 to 100 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit."
)


class RegisteredModel(models.Model):
    name = models.CharField(max_length=100, unique=True, validators=[name_validator])
    description = models.TextField(blank=True)
    task = models.CharField(max_length=32, choices=ModelTask.choices)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="registered_models")
    tags = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ModelVersion(models.Model):
    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    artifact = models.FileField(upload_to="registry/artifacts/", max_length=300)
    sha256 = models.CharField("SHA-256", max_length=64)
    size_bytes = models.BigIntegerField()
    files = models.JSONField(default=list, blank=True, help_text="Files of the artifact, as extracted.")
    status = models.CharField(max_length=12, choices=VersionStatus.choices, default=VersionStatus.VALIDATING)
    status_reason = models.TextField(blank=True, help_text="Why the version is invalid.")
    architectures = models.JSONField(default=list, blank=True)
    model_type = models.CharField(max_length=100, blank=True)
    parameter_count = models.BigIntegerField(null=True, blank=True)
    labels = models.JSONField(default=list, blank=True)
    load_seconds = models.FloatField(null=True, blank=True)
    card_html = models.TextField(blank=True, help_text="The model card (README.md), rendered and sanitised.")
    metrics = models.JSONField(default=dict, blank=True, help_text="Evaluation results (accuracy, macro-F1, …).")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    validated_at = models.DateTimeField(null=True, blank=True)
    archived_at = models.DateTimeField(null=True, blank=True, help_text="Archived versions cannot be used.")

    class Meta:
        ordering = ["model", "-version"]
        constraints = [models.UniqueConstraint(fields=["model", "version"], name="registry_version_unique")]

    def __str__(self) -> str:
        return f"{self.model.name} v{self.version}"

    @property
    def is_usable(self) -> bool:
        """Ready and not archived: it may take an alias, answer predictions and run jobs."""
        return self.status == VersionStatus.READY and self.archived_at is None

    @property
    def evaluation(self) -> dict:
        """The latest evaluation's figures (accuracy, macro_f1, rows, job, confusion_matrix), or {}."""
        figures = (self.metrics or {}).get("evaluation")
        return figures if isinstance(figures, dict) else {}


class ModelAlias(models.Model):
    """A named pointer (production, staging, …) to one version of a model."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="aliases")
    name = models.CharField(max_length=50, validators=[name_validator])
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="aliases")
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["model", "name"]
        verbose_name_plural = "model aliases"
        constraints = [models.UniqueConstraint(fields=["model", "name"], name="registry_alias_unique")]

    def __str__(self) -> str:
        return f"{self.model.name}@{self.name}"


class InferenceJob(Job):
    """A batch inference or evaluation run over an uploaded file; progress counts its rows."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="inference_jobs")
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="inference_jobs")
    kind = models.CharField(max_length=12, choices=InferenceKind.choices)
    name = models.CharField(max_length=200, blank=True)
    input_file = models.FileField(upload_to="registry/inputs/", max_length=300)
    input_format = models.CharField(max_length=8)  # csv or jsonl
    result_file = models.FileField(upload_to="registry/results/", max_length=300, blank=True)
    metrics = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["owner", "-id"], name="registry_job_owner_recent"),
            models.Index(fields=["status", "-id"], name="registry_job_status_recent"),
            models.Index(fields=["kind", "-id"], name="registry_job_kind_recent"),
            # Each offered ordering has its (field, id) index: both directions of it are one index scan.
            models.Index(fields=["created_at", "id"], name="registry_job_created_id"),
            models.Index(fields=["finished_at", "id"], name="registry_job_finished_id"),
        ]

    def __str__(self) -> str:
        return f"Inference job #{self.pk} {self.name}".strip()


class DriftCount(models.Model):
    """How many of a version's synchronous predictions in one hour fell in one bin of one drift feature (the
    predicted label, the input's length in characters).

    Each prediction call adds to its bins in place (apps.registry.drift), so the drift window costs a row per hour,
    feature and bin however many predictions it holds.
    """

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="drift_counts")
    hour = models.DateTimeField(help_text="The start of the hour, UTC.")
    feature = models.CharField(max_length=20)
    value = models.CharField(max_length=200, help_text="The bin: a label, or a range of lengths such as 64-127.")
    predictions = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["version", "hour", "feature", "value"], name="registry_drift_count_unique")
        ]
        indexes = [models.Index(fields=["hour"], name="registry_drift_count_hour")]

    def __str__(self) -> str:
        return f"{self.version_id} {self.hour:%Y-%m-%d %H}h {self.feature}={self.value}: {self.predictions}"
