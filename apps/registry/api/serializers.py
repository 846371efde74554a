"""Model registry API bodies. Input serializers only coerce types: apps.registry.services validates."""

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.jobs.choices import JobStatus

from ..choices import ModelTask
from ..drift import drift_report, drift_reports
from ..models import InferenceJob, ModelAlias, ModelVersion, RegisteredModel
from ..selectors import versions_compared


@extend_schema_field(serializers.ChoiceField(choices=ModelTask.choices))
class TaskField(serializers.CharField):
    """Any string: the service refuses an unknown task with the list of known ones."""


@extend_schema_field(serializers.ListField(child=serializers.CharField()))
class InputsField(serializers.JSONField):
    """Any JSON: the service checks the list (count, types, lengths) and names the input at fault."""


class ModelRegisterSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="1 to 100 lowercase letters, digits, '.', '_' or '-'; unique.")
    task = TaskField(help_text="The transformers pipeline task the model's versions must serve.")
    description = serializers.CharField(default="", allow_blank=True)
    tags = serializers.ListField(child=serializers.CharField(), default=list, help_text="Up to 10 labels.")


class ModelVersionSerializer(serializers.ModelSerializer):
    """A version without its file list and model card."""

    model = serializers.CharField(source="model.name")
    created_by = serializers.CharField(source="created_by.username")
    aliases = serializers.SerializerMethodField(help_text="Names of the aliases pointing at this version.")
    drift = serializers.SerializerMethodField(
        help_text="Drift watch: status (no_reference, too_few_predictions, ok, warn, drift), predictions in the "
        "window, and per feature (label, input_length) the PSI and each bin's share in the evaluation and the window."
    )

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "model",
            "version",
            "status",
            "status_reason",
            "aliases",
            "sha256",
            "size_bytes",
            "architectures",
            "model_type",
            "parameter_count",
            "labels",
            "load_seconds",
            "metrics",
            "drift",
            "created_by",
            "created_at",
            "validated_at",
            "archived_at",
        ]
        read_only_fields = fields

    def get_aliases(self, version: ModelVersion) -> list[str]:
        return sorted(alias.name for alias in version.aliases.all())

    @extend_schema_field(serializers.DictField())
    def get_drift(self, version: ModelVersion) -> dict:
        # A list of versions computes every report in one query first (RegisteredModelDetailSerializer).
        report = self.context.get("drift_reports", {}).get(version.pk) or drift_report(version)
        return report.as_dict()


class ModelVersionDetailSerializer(ModelVersionSerializer):
    """A version with the files of its artifact and its model card (README.md) as sanitised HTML."""

    class Meta(ModelVersionSerializer.Meta):
        fields = [*ModelVersionSerializer.Meta.fields, "files", "card_html"]
        read_only_fields = fields


class VersionUploadSerializer(serializers.Serializer):
    artifact = serializers.FileField(
        allow_empty_file=True,
        help_text="A .zip or .tar.gz of a save_pretrained folder: safetensors weights, at most "
        "REGISTRY_MAX_ARTIFACT_MB, REGISTRY_MAX_FILES files and REGISTRY_MAX_UNCOMPRESSED_MB unpacked.",
    )


class RegisteredModelSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username")
    tags = serializers.ListField(child=serializers.CharField())
    aliases = serializers.SerializerMethodField(help_text="Alias name → version number.")
    latest_version = serializers.SerializerMethodField(help_text="The highest version number; null before uploads.")

    class Meta:
        model = RegisteredModel
        fields = ["id", "name", "task", "description", "owner", "tags", "aliases", "latest_version", "created_at"]
        read_only_fields = fields

    @extend_schema_field(serializers.DictField(child=serializers.IntegerField()))
    def get_aliases(self, model: RegisteredModel) -> dict:
        return {alias.name: alias.version.version for alias in model.aliases.all()}

    def get_latest_version(self, model: RegisteredModel) -> int | None:
        # Annotated by the view's queryset (Max of the version numbers).
        return model.latest_version


class RegisteredModelDetailSerializer(RegisteredModelSerializer):
    """A model with all its versions, newest first, for side-by-side comparison."""

    versions = serializers.SerializerMethodField()

    class Meta(RegisteredModelSerializer.Meta):
        fields = [*RegisteredModelSerializer.Meta.fields, "versions"]
        read_only_fields = fields

    @extend_schema_field(ModelVersionSerializer(many=True))
    def get_versions(self, model: RegisteredModel) -> list:
        versions = versions_compared(model)
        context = {**self.context, "drift_reports": drift_reports(versions)}
        return ModelVersionSerializer(versions, many=True, context=context).data


class AliasMoveSerializer(serializers.Serializer):
    alias = serializers.CharField(help_text="e.g. staging or production (production needs the admin role).")
    version = serializers.IntegerField(help_text="The version number the alias should point at; it must be ready.")


class AliasSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model.name")
    alias = serializers.CharField(source="name")
    version = serializers.IntegerField(source="version.version")
    updated_by = serializers.CharField(source="updated_by.username")

    class Meta:
        model = ModelAlias
        fields = ["model", "alias", "version", "updated_by", "updated_at"]
        read_only_fields = fields


class PredictSerializer(serializers.Serializer):
    inputs = InputsField(help_text="1 to REGISTRY_SYNC_MAX_INPUTS (64) texts; use an inference job for more.")
    alias = serializers.CharField(
        required=False, allow_null=True, default=None, help_text="Alias to use; production when neither is given."
    )
    version = serializers.IntegerField(
        required=False, allow_null=True, default=None, help_text="Version number to use instead of an alias."
    )


class PredictionSerializer(serializers.Serializer):
    model = serializers.CharField()
    version = serializers.IntegerField(help_text="The version that answered.")
    alias = serializers.CharField(allow_null=True, help_text="The alias asked for; null when a version was given.")
    outputs = serializers.ListField(child=serializers.JSONField(), help_text="The pipeline's output, one per input.")


class InferenceJobCreateSerializer(serializers.Serializer):
    file = serializers.FileField(
        allow_empty_file=True,
        help_text="CSV with a header or JSON Lines: a text column, and a label column for an evaluation; "
        "at most REGISTRY_JOB_MAX_FILE_MB and REGISTRY_JOB_MAX_ROWS rows.",
    )
    model = serializers.CharField(help_text="Name of the registered model.")
    alias = serializers.CharField(
        required=False, allow_null=True, default=None, help_text="Alias to use; production when neither is given."
    )
    version = serializers.IntegerField(required=False, allow_null=True, default=None)
    name = serializers.CharField(required=False, default="", allow_blank=True)


class InferenceJobSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username")
    model = serializers.CharField(source="version.model.name")
    version = serializers.IntegerField(source="version.version")
    rows_total = serializers.IntegerField(source="progress_total", help_text="Rows in the input file.")
    rows_done = serializers.IntegerField(source="progress_done", help_text="Rows predicted so far.")
    result_url = serializers.SerializerMethodField(help_text="Download of the results; null until completed.")

    class Meta:
        model = InferenceJob
        fields = [
            "id",
            "name",
            "owner",
            "kind",
            "model",
            "version",
            "status",
            "input_format",
            "rows_total",
            "rows_done",
            "metrics",
            "error",
            "created_at",
            "updated_at",
            "started_at",
            "finished_at",
            "result_url",
        ]
        read_only_fields = fields

    def get_result_url(self, job: InferenceJob) -> str | None:
        if job.status != JobStatus.COMPLETED:
            return None
        url = reverse("registry:inference-job-result", kwargs={"pk": job.pk})
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request else url
