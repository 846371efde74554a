"""Model registry API: models, version uploads, aliases, predictions, and batch / evaluation jobs."""

from functools import cached_property

from django.db.models import Max, Prefetch
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.reverse import reverse

from apps.core.api.downloads import DownloadNegotiation
from apps.core.api.pagination import StandardPagination
from apps.core.api.schema import QUEUE_UNAVAILABLE
from apps.core.api.uploads import UploadLimitMixin
from apps.core.choices import Role
from apps.core.permissions import WRITE_ROLES, has_role
from apps.core.responses import StreamedFileResponse
from apps.jobs.api import cancel_schema

from ..inference import inference_job_cancel, inference_job_create, inference_job_result
from ..models import InferenceJob, ModelAlias, ModelVersion, RegisteredModel
from ..selectors import alias_history, inference_jobs_visible_to
from ..services import (
    alias_delete,
    alias_move,
    alias_promote,
    alias_rollback,
    alias_route,
    model_register,
    predict,
    version_archive,
    version_update,
    version_upload,
)
from .filters import InferenceJobFilter, RegisteredModelFilter
from .serializers import (
    AliasChangeSerializer,
    AliasMoveSerializer,
    AliasPromoteSerializer,
    AliasSerializer,
    InferenceJobCreateSerializer,
    InferenceJobSerializer,
    ModelRegisterSerializer,
    ModelVersionDetailSerializer,
    ModelVersionSerializer,
    PredictionSerializer,
    PredictSerializer,
    RegisteredModelDetailSerializer,
    RegisteredModelSerializer,
    VersionUpdateSerializer,
    VersionUploadSerializer,
)

# RegisteredModel.name's pattern without its anchors, for URLs.
MODEL_NAME_REGEX = r"[a-z0-9][a-z0-9._-]{0,99}"


class RegistryAccess(BasePermission):
    """Every role reads the registry; operators and administrators use it (the services then check ownership)."""

    def has_permission(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            self.message = "Reading the model registry needs a role: admin, operator, viewer or compliance."
            return has_role(request.user, *Role.values)
        self.message = (
            "Only operators and administrators may change the model registry or run its models; "
            "viewers and compliance officers only read."
        )
        return has_role(request.user, *WRITE_ROLES)


def registered_model(name: str) -> RegisteredModel:
    model = RegisteredModel.objects.filter(name=name).first()
    if model is None:
        raise exceptions.NotFound(f"No model named {name!r}.")
    return model


READ_ONLY_403 = OpenApiResponse(description="Viewers and compliance officers only read; users without a role: all.")
SERVICE_403 = OpenApiResponse(
    description="Not allowed: viewers and compliance officers only read; an operator changes only own models; "
    "moving production needs the admin role."
)


@extend_schema_view(
    list=extend_schema(summary="Registered models, by name, each with its aliases and latest version number."),
    retrieve=extend_schema(summary="One model with all its versions (status, aliases, metrics) newest first."),
)
class RegisteredModelViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Registered models. Every role reads them all; operators and administrators register and use them."""

    # The audit middleware names the object type of API writes after this queryset's model.
    queryset = RegisteredModel.objects.all()
    permission_classes = [RegistryAccess]
    lookup_field = "name"
    lookup_value_regex = MODEL_NAME_REGEX
    filterset_class = RegisteredModelFilter
    ordering_fields = ["name", "created_at"]
    ordering = ["name"]

    def get_queryset(self):
        models = RegisteredModel.objects.all()
        if self.action in ("list", "retrieve", "create"):
            aliases = ModelAlias.objects.select_related("version", "canary")
            models = models.select_related("owner").prefetch_related(Prefetch("aliases", queryset=aliases))
            models = models.annotate(latest_version=Max("versions__version"))
        return models

    def get_serializer_class(self):
        return RegisteredModelSerializer if self.action == "list" else RegisteredModelDetailSerializer

    @extend_schema(
        summary="Register a model name for a task (operators and administrators).",
        request=ModelRegisterSerializer,
        responses={
            201: RegisteredModelDetailSerializer,
            400: OpenApiResponse(description="Invalid name, unknown task or too many tags."),
            403: READ_ONLY_403,
            409: OpenApiResponse(description="A model of that name exists."),
        },
    )
    def create(self, request):
        body = ModelRegisterSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        model = model_register(owner=request.user, **body.validated_data)
        response = Response(self.get_serializer(self.get_queryset().get(pk=model.pk)).data, status.HTTP_201_CREATED)
        response["Location"] = reverse("registry:model-detail", kwargs={"name": model.name}, request=request)
        return response

    @extend_schema(
        summary="Run the model on up to REGISTRY_SYNC_MAX_INPUTS inputs: one output per input, and the version used.",
        request=PredictSerializer,
        responses={
            200: PredictionSerializer,
            400: OpenApiResponse(description="inputs is not a list of non-empty strings, or one is too long."),
            403: READ_ONLY_403,
            404: OpenApiResponse(description="No such model, alias or version."),
            409: OpenApiResponse(description="The version is not ready, archived or cannot be loaded."),
            413: OpenApiResponse(description="More inputs than REGISTRY_SYNC_MAX_INPUTS; use an inference job."),
        },
    )
    @action(detail=True, methods=["post"])
    def predict(self, request, name=None):
        body = PredictSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        result = predict(
            model=self.get_object(),
            inputs=data["inputs"],
            actor=request.user,
            alias=data["alias"],
            number=data["version"],
            caller_key=data["caller_key"],
        )
        return Response(result)


@extend_schema_view(
    list=extend_schema(summary="The model's versions, newest first."),
    retrieve=extend_schema(summary="One version: status and reason, metadata, metrics, files and model card."),
)
class ModelVersionViewSet(UploadLimitMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Versions of one registered model, by number."""

    queryset = ModelVersion.objects.all()
    permission_classes = [RegistryAccess]
    lookup_field = "version"
    lookup_url_kwarg = "number"
    lookup_value_regex = "[0-9]+"
    upload_limits = {"create": "REGISTRY_MAX_ARTIFACT_MB"}
    filterset_fields = ["status"]
    ordering_fields = ["version", "created_at"]
    ordering = ["-version"]

    @cached_property
    def registered_model(self) -> RegisteredModel:
        return registered_model(self.kwargs["name"])

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ModelVersion.objects.none()
        versions = self.registered_model.versions.select_related("model", "created_by", "parent")
        return versions.prefetch_related("aliases", "canary_aliases")

    def get_serializer_class(self):
        return ModelVersionSerializer if self.action == "list" else ModelVersionDetailSerializer

    def _version_response(self, version: ModelVersion, status_code: int = status.HTTP_200_OK) -> Response:
        return Response(ModelVersionDetailSerializer(version, context=self.get_serializer_context()).data, status_code)

    @extend_schema(
        summary="Upload the next version: a .zip or .tar.gz of a save_pretrained folder; validation then runs.",
        request={"multipart/form-data": VersionUploadSerializer},
        responses={
            201: ModelVersionDetailSerializer,
            400: OpenApiResponse(description="Unsafe or malformed archive (paths, links, pickle weights, …)."),
            403: SERVICE_403,
            404: OpenApiResponse(description="No such model."),
            413: OpenApiResponse(
                description="Over REGISTRY_MAX_ARTIFACT_MB, REGISTRY_MAX_FILES or REGISTRY_MAX_UNCOMPRESSED_MB."
            ),
            503: QUEUE_UNAVAILABLE,
        },
    )
    def create(self, request, name=None):
        """Check and store the artifact as version ``validating``; a worker loads it and sets ready or invalid.

        With the task queue down the version is stored as invalid (re-validate it later) and the answer is 503."""
        model = self.registered_model
        body = VersionUploadSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        version = version_upload(model=model, upload=body.validated_data["artifact"], actor=request.user)
        response = self._version_response(version, status.HTTP_201_CREATED)
        kwargs = {"name": model.name, "number": version.version}
        response["Location"] = reverse("registry:version-detail", kwargs=kwargs, request=request)
        return response

    @extend_schema(
        summary="Archive a version: it can no longer be used; no alias may point at it.",
        request=None,
        responses={
            200: ModelVersionDetailSerializer,
            403: SERVICE_403,
            409: OpenApiResponse(description="An alias still points at the version."),
        },
    )
    @action(detail=True, methods=["post"])
    def archive(self, request, name=None, number=None):
        version = version_archive(version=self.get_object(), actor=request.user)
        return self._version_response(version)

    @extend_schema(
        summary="Set tags, lineage (training_dataset, source_run_url, parent_version) or the signature "
        "(input_schema, output_schema); only the keys sent change.",
        request=VersionUpdateSerializer,
        responses={
            200: ModelVersionDetailSerializer,
            400: OpenApiResponse(description="A bad tag, URL, parent, schema or an unknown field, named."),
            403: SERVICE_403,
        },
    )
    def partial_update(self, request, name=None, number=None):
        if not isinstance(request.data, dict):
            raise exceptions.ValidationError({"non_field_errors": ["Send a JSON object of the fields to change."]})
        version = version_update(version=self.get_object(), actor=request.user, changes=dict(request.data))
        return self._version_response(version)


ALIAS_404 = OpenApiResponse(description="No such model or alias.")


@extend_schema_view(
    list=extend_schema(summary="The model's aliases, each with its split (stable version first)."),
    retrieve=extend_schema(summary="One alias: its versions and weights, and what a rollback returns to."),
)
class ModelAliasViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Aliases of one model: set one version or a weighted split, promote, roll back, remove, and their history.

    Every change needs the model's owner (an operator) or an administrator; production needs an administrator."""

    queryset = ModelAlias.objects.all()
    serializer_class = AliasSerializer
    permission_classes = [RegistryAccess]
    lookup_field = "name"
    lookup_url_kwarg = "alias"
    lookup_value_regex = MODEL_NAME_REGEX
    pagination_class = None  # a model has a handful of aliases

    @cached_property
    def registered_model(self) -> RegisteredModel:
        return registered_model(self.kwargs["name"])

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ModelAlias.objects.none()
        aliases = self.registered_model.aliases.select_related(
            "model", "version", "canary", "previous_version", "updated_by"
        )
        return aliases.order_by("name")

    def _alias_response(self, alias: ModelAlias) -> Response:
        alias = self.get_queryset().get(pk=alias.pk)
        return Response(AliasSerializer(alias).data)

    @extend_schema(
        summary="Point an alias at one ready version, or split it: "
        '{"alias", "versions": [{"version": 3, "weight": 90}, {"version": 4, "weight": 10}]}.',
        request=AliasMoveSerializer,
        responses={
            200: AliasSerializer,
            400: OpenApiResponse(description="Invalid alias name, no such version, bad weights or a duplicate."),
            403: SERVICE_403,
            409: OpenApiResponse(description="A version is not ready or is archived."),
        },
    )
    def create(self, request, name=None):
        body = AliasMoveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        model, data = self.registered_model, body.validated_data
        if "versions" in data:
            alias = alias_route(model=model, name=data["alias"], targets=data["versions"], actor=request.user)
            return self._alias_response(alias)
        version = model.versions.filter(version=data["version"]).first()
        if version is None:
            raise exceptions.ValidationError({"version": [f"{model.name} has no version {data['version']}."]})
        alias = alias_move(model=model, name=data["alias"], version=version, actor=request.user)
        return self._alias_response(alias)

    @extend_schema(
        summary="Remove an alias (its history stays); predictions naming it then get 404.",
        responses={204: None, 403: SERVICE_403, 404: ALIAS_404},
    )
    def destroy(self, request, name=None, alias=None):
        alias_delete(model=self.registered_model, name=alias, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="End a rollout: the canary (or the split's version named in the body) takes 100 %.",
        request=AliasPromoteSerializer,
        responses={
            200: AliasSerializer,
            400: OpenApiResponse(description="The version named is not part of the split."),
            403: SERVICE_403,
            404: ALIAS_404,
            409: OpenApiResponse(description="The alias has no canary, or the version is no longer usable."),
        },
    )
    @action(detail=True, methods=["post"])
    def promote(self, request, name=None, alias=None):
        body = AliasPromoteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        promoted = alias_promote(
            model=self.registered_model, name=alias, actor=request.user, number=body.validated_data["version"]
        )
        return self._alias_response(promoted)

    @extend_schema(
        summary="Roll back: the stable version takes 100 % again, or without a canary the previous version.",
        request=None,
        responses={
            200: AliasSerializer,
            403: SERVICE_403,
            404: ALIAS_404,
            409: OpenApiResponse(description="Nothing to roll back to, or that version is no longer usable."),
        },
    )
    @action(detail=True, methods=["post"])
    def rollback(self, request, name=None, alias=None):
        return self._alias_response(alias_rollback(model=self.registered_model, name=alias, actor=request.user))

    @extend_schema(
        summary="The alias's changes, newest first (paginated; kept after the alias is removed).",
        responses={200: AliasChangeSerializer(many=True)},
    )
    @action(detail=True, methods=["get"], pagination_class=StandardPagination)
    def history(self, request, name=None, alias=None):
        changes = alias_history(self.registered_model, alias)
        if not changes.exists():
            raise exceptions.NotFound(f"{self.registered_model.name} has no alias {alias!r} and never had one.")
        page = self.paginate_queryset(changes)
        return self.get_paginated_response(AliasChangeSerializer(page, many=True).data)


class CanRunModels(BasePermission):
    message = "Only operators and administrators may run inference jobs; viewers and compliance officers only read."

    def has_permission(self, request, view) -> bool:
        return has_role(request.user, *WRITE_ROLES)


@extend_schema_view(
    list=extend_schema(summary="Inference jobs the user may see (everyone's for administrators and viewers)."),
    retrieve=extend_schema(summary="One job with its progress (rows done / total) and, for evaluations, metrics."),
)
class InferenceJobViewSet(UploadLimitMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Batch inference and evaluation jobs. Others' jobs are invisible (404) unless administrator or viewer."""

    queryset = InferenceJob.objects.all()
    serializer_class = InferenceJobSerializer
    upload_limits = {"create": "REGISTRY_JOB_MAX_FILE_MB"}
    filterset_class = InferenceJobFilter
    ordering_fields = ["id", "created_at", "finished_at"]
    ordering = ["-id"]
    lookup_value_regex = "[0-9]+"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return InferenceJob.objects.none()
        return inference_jobs_visible_to(self.request.user).select_related("owner", "version__model")

    def get_permissions(self):
        if self.action == "create":
            return [*super().get_permissions(), CanRunModels()]
        return super().get_permissions()

    def _job_response(self, job: InferenceJob, status_code: int = status.HTTP_200_OK) -> Response:
        return Response(self.get_serializer(job).data, status=status_code)

    @extend_schema(
        summary="Run a model over a CSV or JSON Lines file (a text column; with a label column, an evaluation).",
        request={"multipart/form-data": InferenceJobCreateSerializer},
        responses={
            201: InferenceJobSerializer,
            400: OpenApiResponse(description="Unknown model, or a file without a text column or with bad rows."),
            403: READ_ONLY_403,
            404: OpenApiResponse(description="No such alias or version."),
            409: OpenApiResponse(description="The version is not ready or archived."),
            413: OpenApiResponse(description="Over REGISTRY_JOB_MAX_FILE_MB."),
            503: QUEUE_UNAVAILABLE,
        },
    )
    def create(self, request):
        body = InferenceJobCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        model = RegisteredModel.objects.filter(name=data["model"]).first()
        if model is None:
            raise exceptions.ValidationError({"model": [f"No model named {data['model']!r}."]})
        job = inference_job_create(
            owner=request.user,
            model=model,
            upload=data["file"],
            alias=data["alias"],
            number=data["version"],
            name=data["name"],
        )
        response = self._job_response(job, status.HTTP_201_CREATED)
        response["Location"] = reverse("registry:inference-job-detail", kwargs={"pk": job.pk}, request=request)
        return response

    @cancel_schema(
        InferenceJobSerializer,
        summary="Cancel a job: a queued one at once, a running one after its current batch of rows.",
        who_may="Only the owner (an operator) or an administrator may cancel.",
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        job = inference_job_cancel(job=self.get_object(), actor=request.user)
        return self._job_response(job)

    @extend_schema(
        summary="Download the results of a completed job (CSV or JSON Lines, like its input).",
        responses={
            (200, "text/csv"): OpenApiTypes.BINARY,
            (200, "application/x-ndjson"): OpenApiTypes.BINARY,
            404: OpenApiResponse(description="No such job among those the user may see."),
            409: OpenApiResponse(description="The job has not completed."),
        },
    )
    @action(
        detail=True,
        methods=["get"],
        renderer_classes=[JSONRenderer],
        content_negotiation_class=DownloadNegotiation,
    )
    def result(self, request, pk=None):
        file, filename, content_type = inference_job_result(self.get_object())
        return StreamedFileResponse(file, as_attachment=True, filename=filename, content_type=content_type)
