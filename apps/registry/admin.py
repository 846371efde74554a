"""The model registry in the admin: models with their versions and a side-by-side comparison, version upload,
alias moves, archive, re-validation and evaluation runs, inference jobs; every change goes through the services.

Versions, aliases and jobs are created and changed by the services only, so their admin pages are read-only and the
admin's own add form of a version is replaced by the upload page.
"""

from __future__ import annotations

import json
from collections import Counter

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import Count, OuterRef, Subquery
from django.http import HttpResponseRedirect
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from unfold.admin import ModelAdmin, TabularInline
from unfold.widgets import (
    UnfoldAdminIntegerFieldWidget,
    UnfoldAdminTextareaWidget,
    UnfoldAdminTextInputWidget,
    UnfoldAdminURLInputWidget,
)

from apps.core.admin_display import json_display
from apps.core.admin_mixins import PortalFormatsAdminMixin, ServiceWrittenAdminMixin, queue_refusal_message
from apps.core.choices import Role
from apps.core.paginators import EstimatedCountPaginator
from apps.core.permissions import WRITE_ROLES, has_role
from apps.core.queueing import QueueUnavailable
from apps.core.storage import StorageUnavailable
from apps.jobs.choices import JobStatus
from apps.jobs.lifecycle import JobStateError

from . import inference, selectors, services
from .choices import InferenceKind, VersionStatus
from .models import InferenceJob, ModelAlias, ModelVersion, RegisteredModel, name_validator

# One admin action touches at most this many objects: each goes through its service (and audit) one by one.
MAX_ACTION_OBJECTS = 50
# The aliases the model list shows as columns; any other alias shows on the model page.
LISTED_ALIASES = ("production", "staging")
FORM_PAGE_TEMPLATE = "admin/registry/form_page.html"
ADMIN_HISTORY = 20


def _metric(value) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "—"


def _evaluation(metrics: dict | None) -> dict:
    """The latest evaluation's figures stored on a version (written by its evaluation jobs)."""
    evaluation = (metrics or {}).get("evaluation")
    return evaluation if isinstance(evaluation, dict) else {}


def _metrics_summary(figures: dict) -> str:
    if not figures:
        return "—"
    rows, job = figures.get("rows"), figures.get("job")
    counted = f" over {rows:,} rows" if isinstance(rows, int) else ""
    source = f" (job #{job})" if isinstance(job, int) else ""
    return f"accuracy {_metric(figures.get('accuracy'))}, macro-F1 {_metric(figures.get('macro_f1'))}{counted}{source}"


def _confusion_table(figures: dict) -> str:
    """The confusion matrix as a table (rows: true labels, columns: predicted), when the figures hold one."""
    confusion = figures.get("confusion_matrix")
    if not isinstance(confusion, dict):
        return ""
    labels, matrix = confusion.get("labels"), confusion.get("matrix")
    if not (isinstance(labels, list) and isinstance(matrix, list) and len(labels) == len(matrix)):
        return ""
    header = format_html_join("", "<th>{}</th>", ((label,) for label in labels))
    body = format_html_join(
        "",
        "<tr><th>{}</th>{}</tr>",
        (
            (label, format_html_join("", "<td>{}</td>", ((f"{count:,}",) for count in row)))
            for label, row in zip(labels, matrix, strict=False)
        ),
    )
    return format_html(
        '<table class="confusion-matrix"><caption>Confusion matrix (rows: true label, columns: predicted)</caption>'
        "<thead><tr><th></th>{}</tr></thead><tbody>{}</tbody></table>",
        header,
        body,
    )


def _version_state(version: ModelVersion) -> str:
    if version.archived_at:
        return "Archived"
    if version.status == VersionStatus.INVALID and version.status_reason:
        return f"Invalid: {version.status_reason}"
    return version.get_status_display()


def _alias_names(version: ModelVersion) -> str:
    """The version's aliases (canaries with their share); load them with ``prefetch_related("aliases",
    "canary_aliases")``."""
    names = [alias.name for alias in version.aliases.all()]
    names += [f"{alias.name} (canary {alias.canary_weight} %)" for alias in version.canary_aliases.all()]
    return ", ".join(names) or "—"


def _stored(file) -> str:
    # Stored files are not served under MEDIA_URL: the name tells where it is, the API hands out results.
    return file.name if file else "—"


def _parameters(count: int | None) -> str:
    return f"{count:,}" if count is not None else "—"


class _ServiceActionsMixin:
    """Selection limit, the intermediate form page, and one message per object, shared by the registry admins."""

    def has_operate_permission(self, request) -> bool:
        """Who sees the actions; the services still check each object's owner and the admin-only rules."""
        return has_role(request.user, *WRITE_ROLES)

    def _selected(self, request, queryset) -> list:
        objects = list(queryset.order_by("pk")[: MAX_ACTION_OBJECTS + 1])
        if len(objects) > MAX_ACTION_OBJECTS:
            self.message_user(
                request,
                f"More than {MAX_ACTION_OBJECTS} {self.opts.verbose_name_plural} were selected; an action handles "
                f"at most {MAX_ACTION_OBJECTS} at a time. Narrow the list with a filter or a search.",
                messages.ERROR,
            )
            return []
        return objects

    def _form_page(self, request, *, title: str, form, submit: str, objects=(), action: str = "", intro: str = ""):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": title,
            "form": form,
            "submit": submit,
            "objects": objects,
            "action": action,
            "intro": intro,
            "selected_field": ACTION_CHECKBOX_NAME,
            "media": self.media + form.media,
        }
        return TemplateResponse(request, FORM_PAGE_TEMPLATE, context)

    def _outcome(self, request, obj, text: str, level=messages.SUCCESS) -> None:
        # Service messages often start by naming the object already.
        self.message_user(request, text if text.startswith(f"{obj} ") else f"{obj}: {text}", level)


# --- Registered models


class RegisterModelForm(forms.ModelForm):
    tags = forms.CharField(
        required=False, help_text=f"Comma-separated, at most {services.MAX_TAGS}.", widget=forms.TextInput
    )

    class Meta:
        model = RegisteredModel
        fields = ["name", "task", "description"]

    def clean_tags(self) -> list[str]:
        tags = [tag.strip() for tag in self.cleaned_data["tags"].split(",") if tag.strip()]
        if len(tags) > services.MAX_TAGS:
            raise forms.ValidationError(f"At most {services.MAX_TAGS} tags; got {len(tags)}.")
        return tags


class VersionInline(PortalFormatsAdminMixin, ServiceWrittenAdminMixin, TabularInline):
    model = ModelVersion
    fields = ["version", "state", "aliases_list", "size", "parameters", "metrics_summary", "created_by", "created_at"]
    readonly_fields = fields
    show_change_link = True
    extra = 0
    can_delete = False
    verbose_name_plural = "Versions"

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("created_by", "model")
            .prefetch_related("aliases", "canary_aliases")
            .defer("files", "card_html")
        )

    @admin.display(description="Status")
    def state(self, version: ModelVersion) -> str:
        return _version_state(version)

    @admin.display(description="Aliases")
    def aliases_list(self, version: ModelVersion) -> str:
        return _alias_names(version)

    @admin.display(description="Size")
    def size(self, version: ModelVersion) -> str:
        return filesizeformat(version.size_bytes)

    @admin.display(description="Parameters")
    def parameters(self, version: ModelVersion) -> str:
        return _parameters(version.parameter_count)

    @admin.display(description="Metrics")
    def metrics_summary(self, version: ModelVersion) -> str:
        return _metrics_summary(_evaluation(version.metrics))


class AliasInline(PortalFormatsAdminMixin, ServiceWrittenAdminMixin, TabularInline):
    model = ModelAlias
    fields = ["name", "traffic", "rollback_to", "updated_by", "updated_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def get_queryset(self, request):
        return (
            super().get_queryset(request).select_related("version__model", "canary", "previous_version", "updated_by")
        )

    @admin.display(description="Traffic")
    def traffic(self, alias: ModelAlias) -> str:
        return alias.split_text

    @admin.display(description="Rollback to")
    def rollback_to(self, alias: ModelAlias) -> str:
        if alias.canary_id:
            return f"v{alias.version.version} (stable)"
        return f"v{alias.previous_version.version}" if alias.previous_version_id else "—"


def _alias_target(name: str) -> Subquery:
    return Subquery(ModelAlias.objects.filter(model=OuterRef("pk"), name=name).values("version__version")[:1])


@admin.register(RegisteredModel)
class RegisteredModelAdmin(PortalFormatsAdminMixin, ModelAdmin):
    list_display = ["name", "task", "owner", "versions_count", "production", "staging", "created_at"]
    list_filter = ["task"]
    list_select_related = ["owner"]
    search_fields = ["name", "=owner__username"]
    search_help_text = "Part of the model name, or the exact owner username."
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    form = RegisterModelForm
    fieldsets = [
        (None, {"fields": ["name", "task", "owner", "description", "tag_list", "created_at"]}),
        ("Compare versions", {"fields": ["comparison"]}),
        ("Alias history", {"fields": ["alias_history"]}),
    ]
    add_fieldsets = [(None, {"fields": ["name", "task", "description", "tags"]})]
    inlines = [VersionInline, AliasInline]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                versions_count=Count("versions"),
                **{f"{name}_version": _alias_target(name) for name in LISTED_ALIASES},
            )
        )

    def get_fieldsets(self, request, obj=None):
        return self.add_fieldsets if obj is None else self.fieldsets

    def get_readonly_fields(self, request, obj=None):
        # On the model page everything is read-only: there is no service that edits a registered model.
        return () if obj is None else [name for _, options in self.fieldsets for name in options["fields"]]

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        registered = services.model_register(
            owner=request.user,
            name=form.cleaned_data["name"],
            task=form.cleaned_data["task"],
            description=form.cleaned_data["description"],
            tags=form.cleaned_data["tags"],
        )
        # The admin logs and redirects using ``obj``: make it the row the service created.
        for field in RegisteredModel._meta.concrete_fields:
            setattr(obj, field.attname, getattr(registered, field.attname))
        obj._state.adding = False

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if object_id is not None:
            model = self.get_object(request, object_id)
            if model is not None and self._may_upload(request, model):
                extra_context = {
                    **(extra_context or {}),
                    "upload_url": reverse("admin:registry_modelversion_add") + f"?model={model.pk}",
                }
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except services.RegistryError as exc:
            # Checks the form cannot make (a name taken meanwhile, a role removed): the transaction is rolled back.
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def _may_upload(self, request, model: RegisteredModel) -> bool:
        version_admin = self.admin_site.get_model_admin(ModelVersion)
        return version_admin.has_add_permission(request) and services.model_may_change(request.user, model)

    @admin.display(description="Versions", ordering="versions_count")
    def versions_count(self, model: RegisteredModel) -> int:
        return model.versions_count

    @admin.display(description="Production", ordering="production_version")
    def production(self, model: RegisteredModel) -> str:
        return f"v{model.production_version}" if model.production_version else "—"

    @admin.display(description="Staging", ordering="staging_version")
    def staging(self, model: RegisteredModel) -> str:
        return f"v{model.staging_version}" if model.staging_version else "—"

    @admin.display(description="Tags")
    def tag_list(self, model: RegisteredModel) -> str:
        return ", ".join(str(tag) for tag in model.tags) or "—"

    @admin.display(description="Latest changes")
    def alias_history(self, model: RegisteredModel) -> str:
        changes = list(selectors.alias_history(model)[:ADMIN_HISTORY])
        if not changes:
            return "No alias has been changed yet."
        api = reverse("registry:model-detail", kwargs={"name": model.name}) + "aliases/<alias>/history/"
        return format_html(
            '<table class="alias-history"><thead><tr><th>When</th><th>Alias</th><th>Change</th><th>Before</th>'
            "<th>After</th><th>By</th></tr></thead><tbody>{}</tbody></table><p>The newest {}; all of them: {}</p>",
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                (
                    (
                        formats.date_format(timezone.localtime(change.created_at), "DATETIME_FORMAT"),
                        change.alias,
                        change.get_action_display(),
                        change.before_text,
                        change.after_text,
                        change.actor.get_username(),
                    )
                    for change in changes
                ),
            ),
            ADMIN_HISTORY,
            api,
        )

    @admin.display(description="Versions side by side")
    def comparison(self, model: RegisteredModel) -> str:
        versions = selectors.versions_compared(model)
        if not versions:
            return "No versions yet."
        rows = []
        for version in versions:
            figures = _evaluation(version.metrics)
            rows.append(
                (
                    reverse("admin:registry_modelversion_change", args=[version.pk]),
                    f"v{version.version}",
                    _version_state(version),
                    _alias_names(version),
                    _parameters(version.parameter_count),
                    _metric(figures.get("accuracy")),
                    _metric(figures.get("macro_f1")),
                    f"{figures['rows']:,}" if isinstance(figures.get("rows"), int) else "—",
                )
            )
        return format_html(
            '<table class="version-comparison"><thead><tr><th>Version</th><th>Status</th><th>Aliases</th>'
            "<th>Parameters</th><th>Accuracy</th><th>Macro-F1</th><th>Evaluated rows</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            format_html_join(
                "",
                '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>'
                "</tr>",
                rows,
            ),
        )


# --- Versions


class _RegistryForm(forms.Form):
    required_css_class = "required"  # the admin marks required fields by this class on their labels


class VersionUploadForm(_RegistryForm):
    model = forms.ModelChoiceField(queryset=RegisteredModel.objects.none())
    artifact = forms.FileField(
        help_text="A .zip or .tar.gz of a save_pretrained folder; weights as safetensors. "
        "It is checked, extracted and then validated by loading it."
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        models = RegisteredModel.objects.order_by("name")
        # Offer only the models the user may add versions to; the service checks again.
        self.fields["model"].queryset = models if has_role(user, Role.ADMIN) else models.filter(owner=user)


class AliasForm(_RegistryForm):
    alias = forms.CharField(
        max_length=50,
        validators=[name_validator],
        initial="staging",
        help_text="For example staging or production (production needs the admin role).",
    )


class EvaluationForm(_RegistryForm):
    data = forms.FileField(
        label="Data file",
        help_text='CSV with a header naming text and label columns, or JSONL of {"text": …, "label": …} objects; '
        "evaluation needs a label on every row.",
    )
    name = forms.CharField(max_length=200, required=False, help_text="Optional job name.")


class VersionEditForm(forms.ModelForm):
    """Tags, lineage and signature of a version; services.version_update checks and saves them."""

    # The admin's own widgets: unfold styles only those (plain ones show without borders and overflow a phone).
    tags_text = forms.CharField(
        required=False,
        label="Tags",
        widget=UnfoldAdminTextInputWidget,
        help_text=f"Comma-separated, at most {services.MAX_TAGS}.",
    )
    source_run_url = forms.URLField(
        required=False,
        max_length=500,
        assume_scheme="https",
        label="Source run URL",
        widget=UnfoldAdminURLInputWidget,
        help_text="The training run.",
    )
    parent_number = forms.IntegerField(
        required=False,
        min_value=1,
        label="Parent version",
        widget=UnfoldAdminIntegerFieldWidget,
        help_text="An earlier version number of this model.",
    )
    input_schema_text = forms.CharField(
        required=False,
        label="Input schema",
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 6}),
        help_text="A JSON Schema every input text must match; empty for none.",
    )
    output_schema_text = forms.CharField(
        required=False,
        label="Output schema",
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 6}),
        help_text="A JSON Schema every output must match; empty for none.",
    )

    class Meta:
        model = ModelVersion
        fields = ["training_dataset", "source_run_url"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        version = self.instance
        self.initial.update(
            tags_text=", ".join(version.tags),
            parent_number=version.parent.version if version.parent_id else None,
            input_schema_text=json.dumps(version.input_schema, indent=2) if version.input_schema else "",
            output_schema_text=json.dumps(version.output_schema, indent=2) if version.output_schema else "",
        )

    def clean_tags_text(self) -> list[str]:
        return [tag.strip() for tag in self.cleaned_data["tags_text"].split(",") if tag.strip()]

    def _schema(self, field: str):
        text = self.cleaned_data[field].strip()
        if not text:
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"Not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.") from None

    def clean_input_schema_text(self):
        return self._schema("input_schema_text")

    def clean_output_schema_text(self):
        return self._schema("output_schema_text")

    def changes(self) -> dict:
        data = self.cleaned_data
        return {
            "tags": data["tags_text"],
            "training_dataset": data["training_dataset"],
            "source_run_url": data["source_run_url"],
            "parent_version": data["parent_number"],
            "input_schema": data["input_schema_text"],
            "output_schema": data["output_schema_text"],
        }


EDITABLE_VERSION_FIELDS = [
    "tags_text",
    "training_dataset",
    "source_run_url",
    "parent_number",
    "input_schema_text",
    "output_schema_text",
]


class VersionChangeList(ChangeList):
    def get_queryset(self, request, exclude_parameters=None):
        return super().get_queryset(request, exclude_parameters).defer("files", "card_html")


@admin.register(ModelVersion)
class ModelVersionAdmin(PortalFormatsAdminMixin, _ServiceActionsMixin, ModelAdmin):
    list_display = ["__str__", "model", "version", "state", "aliases_list", "size", "parameters", "created_at"]
    list_filter = ["status", "model__task"]
    list_select_related = ["model"]
    search_fields = ["model__name"]
    search_help_text = "Part of the model name."
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    actions = ["set_alias", "archive_versions", "revalidate_versions", "run_evaluation"]
    form = VersionEditForm
    fieldsets = [
        (
            None,
            {"fields": ["model", "version", "state", "aliases_list", "created_by", "created_at", "validated_at"]},
        ),
        ("Tags, lineage and signature", {"fields": EDITABLE_VERSION_FIELDS}),
        ("Model card", {"fields": ["card"]}),
        (
            "Metadata",
            {
                "fields": [
                    "architecture_list",
                    "model_type",
                    "parameters",
                    "label_list",
                    "load_seconds",
                    "size",
                    "checksum",
                    "file_list",
                    "stored_artifact",
                    "archived_at",
                ]
            },
        ),
        ("Metrics", {"fields": ["evaluation_summary", "confusion", "metrics_json"]}),
    ]
    readonly_fields = [
        name for _, options in fieldsets for name in options["fields"] if name not in EDITABLE_VERSION_FIELDS
    ]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("model", "created_by", "parent")
            .prefetch_related("aliases", "canary_aliases")
        )

    def get_changelist(self, request, **kwargs):
        return VersionChangeList

    def has_change_permission(self, request, obj=None) -> bool:
        """Only tags, lineage and signature change here, by the model's owner or an admin (the service checks)."""
        if obj is None:
            return has_role(request.user, *WRITE_ROLES)
        return services.model_may_change(request.user, obj.model)

    def save_model(self, request, obj, form, change) -> None:
        # A fresh row: the form has already copied its values onto ``obj``, and the service records what changed.
        services.version_update(
            version=ModelVersion.objects.select_related("model", "parent").get(pk=obj.pk),
            actor=request.user,
            changes=form.changes(),
        )

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except services.RegistryError as exc:
            # A refusal of the service (a tag, URL, parent or schema): the transaction is rolled back.
            self.message_user(request, f"Nothing was changed: {exc.message}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    # Read-only views of the editable fields, for those who may not change the version.

    @admin.display(description="Tags")
    def tags_text(self, version: ModelVersion) -> str:
        return ", ".join(version.tags) or "—"

    @admin.display(description="Parent version")
    def parent_number(self, version: ModelVersion) -> str:
        return f"v{version.parent.version}" if version.parent_id else "—"

    @admin.display(description="Input schema")
    def input_schema_text(self, version: ModelVersion) -> str:
        return json_display(version.input_schema) if version.input_schema else "—"

    @admin.display(description="Output schema")
    def output_schema_text(self, version: ModelVersion) -> str:
        return json_display(version.output_schema) if version.output_schema else "—"

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def add_view(self, request, form_url="", extra_context=None):
        """The upload page: the artifact goes through services.version_upload, its refusal becomes a form error."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        posted = request.method == "POST"
        form = VersionUploadForm(
            request.POST if posted else None,
            request.FILES if posted else None,
            user=request.user,
            initial={"model": request.GET.get("model")},
        )
        if posted and form.is_valid():
            try:
                version = services.version_upload(
                    model=form.cleaned_data["model"], upload=form.cleaned_data["artifact"], actor=request.user
                )
            except (services.RegistryError, StorageUnavailable) as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            except QueueUnavailable as exc:
                # The version is stored (invalid, saying why): uploading again would only add another number.
                form.add_error(None, str(exc))
            else:
                self.message_user(
                    request,
                    f"{version} uploaded ({filesizeformat(version.size_bytes)}); it is being validated and becomes "
                    "ready or invalid shortly.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:registry_modelversion_change", args=[version.pk]))
        limits = (
            f"At most {settings.REGISTRY_MAX_ARTIFACT_MB:,} MB, {settings.REGISTRY_MAX_FILES:,} files and "
            f"{settings.REGISTRY_MAX_UNCOMPRESSED_MB:,} MB unpacked."
        )
        return self._form_page(request, title="Upload a model version", form=form, submit="Upload", intro=limits)

    # --- Columns and detail fields

    @admin.display(description="Status", ordering="status")
    def state(self, version: ModelVersion) -> str:
        return _version_state(version)

    @admin.display(description="Aliases")
    def aliases_list(self, version: ModelVersion) -> str:
        return _alias_names(version)

    @admin.display(description="Size", ordering="size_bytes")
    def size(self, version: ModelVersion) -> str:
        return filesizeformat(version.size_bytes)

    @admin.display(description="Parameters", ordering="parameter_count")
    def parameters(self, version: ModelVersion) -> str:
        return _parameters(version.parameter_count)

    @admin.display(description="Architectures")
    def architecture_list(self, version: ModelVersion) -> str:
        return json_display(version.architectures)

    @admin.display(description="Labels")
    def label_list(self, version: ModelVersion) -> str:
        return ", ".join(str(label) for label in version.labels) or "—"

    @admin.display(description="Files")
    def file_list(self, version: ModelVersion) -> str:
        return format_html_join("", "<div>{}</div>", ((str(name),) for name in version.files)) or "—"

    @admin.display(description="Stored artifact")
    def stored_artifact(self, version: ModelVersion) -> str:
        return _stored(version.artifact)

    @admin.display(description="SHA-256")
    def checksum(self, version: ModelVersion) -> str:
        return version.sha256

    @admin.display(description="Model card")
    def card(self, version: ModelVersion) -> str:
        if not version.card_html:
            return "No README.md in the artifact."
        # card_html is the uploader's Markdown rendered and then cleaned by nh3 when the version was stored
        # (services._card_html): scripts, event handlers and styles are already gone, so it is shown as HTML.
        return mark_safe(f'<div class="model-card">{version.card_html}</div>')  # noqa: S308

    @admin.display(description="Latest evaluation")
    def evaluation_summary(self, version: ModelVersion) -> str:
        return _metrics_summary(_evaluation(version.metrics))

    @admin.display(description="Confusion matrix")
    def confusion(self, version: ModelVersion) -> str:
        return _confusion_table(_evaluation(version.metrics)) or "—"

    @admin.display(description="All metrics")
    def metrics_json(self, version: ModelVersion) -> str:
        return json_display(version.metrics)

    # --- Actions

    @admin.action(description="Set or move an alias to the selected versions", permissions=["operate"])
    def set_alias(self, request, queryset):
        versions = self._selected(request, queryset)
        if not versions:
            return None
        form = AliasForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            return self._form_page(
                request,
                title="Set or move an alias",
                form=form,
                submit="Move the alias",
                objects=versions,
                action="set_alias",
                intro="The alias of each selected version's model will point at that version.",
            )
        repeated = [name for name, count in Counter(version.model.name for version in versions).items() if count > 1]
        if repeated:
            self.message_user(
                request,
                f"An alias points at one version of a model; select one version of {', '.join(repeated)}. "
                "Nothing was changed.",
                messages.ERROR,
            )
            return None
        name = form.cleaned_data["alias"]
        for version in versions:
            previous = version.model.aliases.filter(name=name).values_list("version__version", flat=True).first()
            try:
                services.alias_move(model=version.model, name=name, version=version, actor=request.user)
            except services.RegistryError as exc:
                self._outcome(request, version, exc.message, messages.WARNING)
                continue
            moved = f"moved from v{previous}" if previous else "set"
            self._outcome(request, version, f"alias {name} {moved} to this version.")
        return None

    @admin.action(description="Archive selected versions", permissions=["operate"])
    def archive_versions(self, request, queryset):
        for version in self._selected(request, queryset):
            if version.archived_at:
                self._outcome(request, version, "already archived.", messages.INFO)
                continue
            try:
                services.version_archive(version=version, actor=request.user)
            except services.RegistryError as exc:
                self._outcome(request, version, exc.message, messages.WARNING)
            else:
                self._outcome(request, version, "archived; it can no longer be used.")

    @admin.action(description="Re-validate selected versions", permissions=["operate"])
    def revalidate_versions(self, request, queryset):
        versions = self._selected(request, queryset)
        for index, version in enumerate(versions):
            try:
                services.version_revalidate(version=version, actor=request.user)
            except services.RegistryError as exc:
                self._outcome(request, version, exc.message, messages.WARNING)
            except QueueUnavailable as exc:
                queue_refusal_message(self, request, exc, left=len(versions) - index - 1)
                break
            else:
                self._outcome(request, version, "validation started again.")

    @admin.action(description="Run an evaluation of the selected versions", permissions=["operate"])
    def run_evaluation(self, request, queryset):
        versions = self._selected(request, queryset)
        if not versions:
            return None
        applied = "apply" in request.POST
        form = EvaluationForm(request.POST if applied else None, request.FILES if applied else None)
        if not form.is_valid():
            return self._form_page(
                request,
                title="Run an evaluation",
                form=form,
                submit="Start the evaluation",
                objects=versions,
                action="run_evaluation",
                intro="One inference job per selected version runs over the file; with labels, its accuracy and "
                "macro-F1 are stored on the version.",
            )
        upload = form.cleaned_data["data"]
        for index, version in enumerate(versions):
            upload.seek(0)  # each job reads the same upload from the start
            try:
                job = inference.inference_job_create(
                    owner=request.user,
                    model=version.model,
                    upload=upload,
                    number=version.version,
                    name=form.cleaned_data["name"] or f"Evaluation of {version}",
                )
            except services.RegistryError as exc:
                self._outcome(request, version, exc.message, messages.WARNING)
                continue
            except QueueUnavailable as exc:
                queue_refusal_message(self, request, exc, left=len(versions) - index - 1)
                break
            except StorageUnavailable as exc:
                left = len(versions) - index - 1
                untried = {0: "", 1: " The version after it was not tried."}.get(
                    left, f" The {left} versions after it were not tried."
                )
                self._outcome(request, version, f"not started: {exc.message}{untried}", messages.ERROR)
                break
            unlabelled = (
                ""
                if job.kind == InferenceKind.EVALUATION
                else " Not every row has a label, so it runs as a batch job without metrics."
            )
            self._outcome(
                request, version, f"{job.kind} job #{job.pk} queued over {job.progress_total:,} rows.{unlabelled}"
            )
        return None


# --- Inference jobs


class InferenceJobChangeList(ChangeList):
    def get_queryset(self, request, exclude_parameters=None):
        return super().get_queryset(request, exclude_parameters).defer("metrics", "error")


@admin.register(InferenceJob)
class InferenceJobAdmin(PortalFormatsAdminMixin, ServiceWrittenAdminMixin, _ServiceActionsMixin, ModelAdmin):
    list_display = ["id", "name", "owner", "model_version", "kind", "status", "progress", "created_at"]
    list_display_links = ["id", "name"]
    list_filter = ["status", "kind", "created_at"]
    list_select_related = ["owner", "version__model"]
    search_fields = ["name", "=owner__username", "version__model__name"]
    search_help_text = "Part of the job name or the model name, or the exact owner username."
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    actions = ["cancel_jobs"]
    fieldsets = [
        (None, {"fields": ["id", "name", "owner", "model_version", "kind", "status", "error"]}),
        ("Progress", {"fields": ["progress", "input_format", "stored_input", "stored_result"]}),
        ("Metrics", {"fields": ["evaluation_summary", "confusion", "metrics_json"]}),
        (
            "Timings",
            {
                "fields": [
                    "created_at",
                    "queued_at",
                    "started_at",
                    "heartbeat_at",
                    "finished_at",
                    "updated_at",
                    "attempts",
                    "max_attempts",
                    "worker",
                    "celery_task_id",
                ]
            },
        ),
    ]
    readonly_fields = [name for _, options in fieldsets for name in options["fields"]]

    def get_queryset(self, request):
        return selectors.inference_jobs_visible_to(request.user).select_related("owner", "version__model")

    def get_changelist(self, request, **kwargs):
        return InferenceJobChangeList

    @admin.display(description="Model version", ordering="version")
    def model_version(self, job: InferenceJob) -> str:
        return str(job.version)

    @admin.display(description="Progress", ordering="progress_done")
    def progress(self, job: InferenceJob) -> str:
        percent = f" ({job.progress_done / job.progress_total:.0%})" if job.progress_total else ""
        return f"{job.progress_done:,} / {job.progress_total:,}{percent}"

    @admin.display(description="Input file")
    def stored_input(self, job: InferenceJob) -> str:
        return _stored(job.input_file)

    @admin.display(description="Results file")
    def stored_result(self, job: InferenceJob) -> str:
        return _stored(job.result_file)

    @admin.display(description="Summary")
    def evaluation_summary(self, job: InferenceJob) -> str:
        return _metrics_summary(job.metrics)

    @admin.display(description="Confusion matrix")
    def confusion(self, job: InferenceJob) -> str:
        return _confusion_table(job.metrics) or "—"

    @admin.display(description="All metrics")
    def metrics_json(self, job: InferenceJob) -> str:
        return json_display(job.metrics)

    @admin.action(description="Cancel selected jobs", permissions=["operate"])
    def cancel_jobs(self, request, queryset):
        for job in self._selected(request, queryset):
            try:
                job = inference.inference_job_cancel(job=job, actor=request.user)
            except (services.RegistryError, JobStateError) as exc:
                self._outcome(request, job, exc.message, messages.WARNING)
                continue
            if job.status == JobStatus.CANCELLED:
                self._outcome(request, job, "cancelled.")
            else:
                self._outcome(request, job, "asked to stop; it is cancelled within seconds.")
