"""Model registry API bodies. Input serializers only coerce types: apps.registry.services validates."""

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.jobs.choices import JobStatus

from ..choices import ModelTask
from ..drift import drift_report, drift_reports
from ..models import AliasChange, InferenceJob, ModelAlias, ModelVersion, RegisteredModel
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
    aliases = serializers.SerializerMethodField(
        help_text="Names of the aliases pointing at this version (as their stable version or their canary)."
    )
    lineage = serializers.SerializerMethodField()
    signature = serializers.SerializerMethodField()
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
            "tags",
            "lineage",
            "signature",
            "drift",
            "created_by",
            "created_at",
            "validated_at",
            "archived_at",
        ]
        read_only_fields = fields

    def get_aliases(self, version: ModelVersion) -> list[str]:
        return sorted({alias.name for alias in version.aliases.all()} | {a.name for a in version.canary_aliases.all()})

    @extend_schema_field(
        serializers.DictField(help_text='{"training_dataset": str, "source_run_url": str, "parent_version": int|null}')
    )
    def get_lineage(self, version: ModelVersion) -> dict:
        return {
            "training_dataset": version.training_dataset,
            "source_run_url": version.source_run_url,
            "parent_version": version.parent.version if version.parent_id else None,
        }

    @extend_schema_field(serializers.DictField(help_text='{"input_schema": JSON Schema|null, "output_schema": …}'))
    def get_signature(self, version: ModelVersion) -> dict:
        return {"input_schema": version.input_schema, "output_schema": version.output_schema}

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


class VersionUpdateSerializer(serializers.Serializer):
    """Only the keys sent change; the service checks each and refuses unknown ones."""

    tags = serializers.JSONField(required=False, help_text="Up to 10 labels of 1 to 50 letters, digits, . : _ -")
    training_dataset = serializers.JSONField(required=False, help_text="Reference to the training data; up to 300.")
    source_run_url = serializers.JSONField(required=False, help_text="http(s) URL of the training run; '' removes.")
    parent_version = serializers.JSONField(required=False, help_text="An earlier version number; null removes.")
    input_schema = serializers.JSONField(required=False, help_text="JSON Schema of one input; null removes.")
    output_schema = serializers.JSONField(required=False, help_text="JSON Schema of one output; null removes.")


class VersionUploadSerializer(serializers.Serializer):
    artifact = serializers.FileField(
        allow_empty_file=True,
        help_text="A .zip or .tar.gz of a save_pretrained folder: safetensors weights, at most "
        "REGISTRY_MAX_ARTIFACT_MB, REGISTRY_MAX_FILES files and REGISTRY_MAX_UNCOMPRESSED_MB unpacked.",
    )


class RegisteredModelSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username")
    tags = serializers.ListField(child=serializers.CharField())
    aliases = serializers.SerializerMethodField(help_text="Alias name → its stable version number.")
    rollouts = serializers.SerializerMethodField(
        help_text='Alias name → its split, e.g. [{"version": 3, "weight": 90}, {"version": 4, "weight": 10}].'
    )
    latest_version = serializers.SerializerMethodField(help_text="The highest version number; null before uploads.")

    class Meta:
        model = RegisteredModel
        fields = [
            "id",
            "name",
            "task",
            "description",
            "owner",
            "tags",
            "aliases",
            "rollouts",
            "latest_version",
            "created_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.DictField(child=serializers.IntegerField()))
    def get_aliases(self, model: RegisteredModel) -> dict:
        return {alias.name: alias.version.version for alias in model.aliases.all()}

    @extend_schema_field(serializers.DictField(child=serializers.ListField(child=serializers.DictField())))
    def get_rollouts(self, model: RegisteredModel) -> dict:
        return {alias.name: alias.split for alias in model.aliases.all()}

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


class AliasTargetSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    weight = serializers.IntegerField(help_text="Percent of the callers, 1 to 99 in a split; 100 alone.")


class AliasMoveSerializer(serializers.Serializer):
    alias = serializers.CharField(help_text="e.g. staging or production (production needs the admin role).")
    version = serializers.IntegerField(
        required=False, help_text="The version number the alias should point at alone; it must be ready."
    )
    versions = serializers.JSONField(
        required=False,
        help_text='Instead of version: a split, [{"version": 3, "weight": 90}, {"version": 4, "weight": 10}].',
    )

    def validate(self, data):
        if ("version" in data) == ("versions" in data):
            raise serializers.ValidationError({"version": ["Give version (one) or versions (a split), not both."]})
        return data


class AliasPromoteSerializer(serializers.Serializer):
    version = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        help_text="The split's version to promote; the canary if left out.",
    )


class AliasSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model.name")
    alias = serializers.CharField(source="name")
    version = serializers.IntegerField(source="version.version", help_text="The stable version.")
    canary = serializers.SerializerMethodField(help_text="The canary's version number during a rollout, else null.")
    versions = serializers.SerializerMethodField(help_text="The split: stable version first.")
    previous_version = serializers.SerializerMethodField(help_text="What a rollback without a canary returns to.")
    updated_by = serializers.CharField(source="updated_by.username")

    class Meta:
        model = ModelAlias
        fields = ["model", "alias", "version", "canary", "versions", "previous_version", "updated_by", "updated_at"]
        read_only_fields = fields

    def get_canary(self, alias: ModelAlias) -> int | None:
        return alias.canary.version if alias.canary_id else None

    @extend_schema_field(AliasTargetSerializer(many=True))
    def get_versions(self, alias: ModelAlias) -> list[dict]:
        return alias.split

    def get_previous_version(self, alias: ModelAlias) -> int | None:
        return alias.previous_version.version if alias.previous_version_id else None


class AliasChangeSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor.username")
    before = AliasTargetSerializer(many=True)
    after = AliasTargetSerializer(many=True)

    class Meta:
        model = AliasChange
        fields = ["id", "alias", "action", "before", "after", "actor", "created_at"]
        read_only_fields = fields


class PredictSerializer(serializers.Serializer):
    inputs = InputsField(help_text="1 to REGISTRY_SYNC_MAX_INPUTS (64) texts; use an inference job for more.")
    alias = serializers.CharField(
        required=False, allow_null=True, default=None, help_text="Alias to use; production when neither is given."
    )
    version = serializers.IntegerField(
        required=False, allow_null=True, default=None, help_text="Version number to use instead of an alias."
    )
    caller_key = serializers.JSONField(
        required=False,
        default=None,
        help_text="Who is asking (a user or session id, up to 200 characters): a split alias always gives the same "
        "caller the same version. Without it the request id decides.",
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
