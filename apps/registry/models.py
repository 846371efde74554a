"""Registered models, their versions and aliases, and batch inference / evaluation jobs."""

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

from apps.jobs.models import Job

from .choices import AliasAction, InferenceKind, ModelTask, VersionStatus

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
    tags = models.JSONField(default=list, blank=True, help_text="Short labels of this version.")
    # Lineage: where the version came from. The parent is an earlier version of the same model (services check).
    training_dataset = models.CharField(
        max_length=300, blank=True, help_text="A reference to the data it was trained on (name, path, hash)."
    )
    source_run_url = models.URLField("source run URL", max_length=500, blank=True, help_text="The training run.")
    parent = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="children",
        help_text="The earlier version this one was trained from.",
    )
    # Signature: JSON Schemas of one input and of one output; null when not declared (anything goes).
    input_schema = models.JSONField(null=True, blank=True, help_text="JSON Schema every input must match.")
    output_schema = models.JSONField(null=True, blank=True, help_text="JSON Schema every output must match.")

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
    """A named pointer (production, staging, …) to one version of a model, or a rollout: traffic split between its
    stable ``version`` and a ``canary`` that takes ``canary_weight`` percent of the callers."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="aliases")
    name = models.CharField(max_length=50, validators=[name_validator])
    version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="aliases", help_text="The stable version."
    )
    canary = models.ForeignKey(
        ModelVersion,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="canary_aliases",
        help_text="The version taking part of the traffic during a rollout.",
    )
    canary_weight = models.PositiveSmallIntegerField(default=0, help_text="Percent of callers sent to the canary.")
    # What a rollback without a canary returns to: the stable version before the last move or promotion.
    previous_version = models.ForeignKey(
        ModelVersion, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["model", "name"]
        verbose_name_plural = "model aliases"
        constraints = [
            models.UniqueConstraint(fields=["model", "name"], name="registry_alias_unique"),
            models.CheckConstraint(
                condition=models.Q(canary__isnull=True, canary_weight=0)
                | models.Q(canary__isnull=False, canary_weight__gte=1, canary_weight__lte=99),
                name="registry_alias_canary_weight",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model.name}@{self.name}"

    @property
    def split(self) -> list[dict]:
        """``[{"version": n, "weight": percent}, …]``: the stable version first; load ``version`` and ``canary``."""
        if self.canary_id is None:
            return [{"version": self.version.version, "weight": 100}]
        return [
            {"version": self.version.version, "weight": 100 - self.canary_weight},
            {"version": self.canary.version, "weight": self.canary_weight},
        ]

    @property
    def split_text(self) -> str:
        """``v3 90 % · v4 10 %``, or ``v3`` for one version."""
        if self.canary_id is None:
            return f"v{self.version.version}"
        return " · ".join(f"v{part['version']} {part['weight']} %" for part in self.split)


class AliasChange(models.Model):
    """One change of an alias, kept after the alias is removed: who, when, what it served before and after."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="alias_changes")
    alias = models.CharField(max_length=50)
    action = models.CharField(max_length=12, choices=AliasAction.choices)
    before = models.JSONField(default=list, blank=True, help_text='The split before: [{"version", "weight"}].')
    after = models.JSONField(default=list, blank=True, help_text="The split after; empty once removed.")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["model", "alias", "-id"], name="registry_alias_change_recent")]

    def __str__(self) -> str:
        return f"{self.model.name}@{self.alias} {self.action}"

    @staticmethod
    def split_text_of(split: list[dict]) -> str:
        if not split:
            return "—"
        if len(split) == 1:
            return f"v{split[0]['version']}"
        return " · ".join(f"v{part['version']} {part['weight']} %" for part in split)

    @property
    def before_text(self) -> str:
        return self.split_text_of(self.before)

    @property
    def after_text(self) -> str:
        return self.split_text_of(self.after)


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
