"""The registry's portal pages at /registry/: the models list with a register form, and one model's page (versions
and their upload, aliases, model card, comparison, try-it box, inference jobs).

Thin doors: reads come from ``selectors``, writes go through ``services`` and ``inference``, whose refusals become
form errors or messages. Who may do what is the API's rule: every role reads, operators and administrators write
(the services then check ownership), others' jobs are not found. The try-it box posts to the API's predict action
from the browser, so its limits and messages are the API's own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from apps.core.api.errors import PayloadTooLarge
from apps.core.api.uploads import UploadLimit
from apps.core.choices import Role
from apps.core.permissions import WRITE_ROLES, has_role
from apps.core.queueing import QueueUnavailable
from apps.core.responses import StreamedFileResponse
from apps.core.storage import StorageUnavailable
from apps.jobs.choices import FINISHED_STATUSES

from . import selectors
from .drift import drift_reports
from .forms import (
    AliasMoveForm,
    InferenceJobForm,
    ModelSearchForm,
    RegisterModelForm,
    VersionUploadForm,
    target_choices,
)
from .inference import inference_job_create, inference_job_result
from .models import RegisteredModel
from .rendering import drift_chart_svg
from .services import (
    RegistryError,
    alias_delete,
    alias_move,
    alias_promote,
    alias_rollback,
    model_may_change,
    model_register,
    version_upload,
)

MODELS_PER_PAGE = 25
RECENT_JOBS = 20
HISTORY_PER_PAGE = 10
READ_REFUSED = "Reading the model registry needs a role: admin, operator, viewer or compliance."
WRITE_REFUSED = (
    "Only operators and administrators may change the model registry or run its models; "
    "viewers and compliance officers only read."
)


def _require_reader(user) -> None:
    if not has_role(user, *Role.values):
        raise PermissionDenied(READ_REFUSED)


def _require_writer(user) -> None:
    if not has_role(user, *WRITE_ROLES):
        raise PermissionDenied(WRITE_REFUSED)


def _form_error(form, exc: RegistryError) -> None:
    form.add_error(exc.field if exc.field in form.fields else None, exc.message)


# --- Models list


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def model_list(request):
    """Search and filter the models; operators and administrators register one (then land on its page)."""
    _require_reader(request.user)
    register = None
    status = 200
    if request.method == "POST":
        _require_writer(request.user)
        register = RegisterModelForm(request.POST)
        if register.is_valid():
            try:
                model = model_register(owner=request.user, **register.cleaned_data)
            except RegistryError as exc:
                _form_error(register, exc)
                status = exc.status
            else:
                messages.success(
                    request, f"Registered {model.name}. Upload its first version under “Versions” to use it."
                )
                return redirect("registry_page:model", name=model.name)
        else:
            status = 400
    search = ModelSearchForm(request.GET)
    filters = search.cleaned_data if search.is_valid() else {}
    models = selectors.models_listed(search=filters.get("q", ""), task=filters.get("task", ""))
    page = Paginator(models, MODELS_PER_PAGE).get_page(request.GET.get("page"))
    may_write = has_role(request.user, *WRITE_ROLES)
    context = {
        "page": page,
        "search": search,
        "filtered": bool(filters.get("q") or filters.get("task")),
        "query": _query_without_page(request),
        "may_register": may_write,
        "register": register or (RegisterModelForm() if may_write else None),
        "api_url": reverse("registry:model-list"),
    }
    return render(request, "registry/model_list.html", context, status=status)


def _query_without_page(request) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


# --- One model


def _model(request, name: str) -> RegisteredModel:
    _require_reader(request.user)
    return get_object_or_404(RegisteredModel.objects.select_related("owner"), name=name)


def _model_url(name: str, section: str) -> str:
    return reverse("registry_page:model", kwargs={"name": name}) + f"#{section}"


def _compared(request, versions: list) -> list:
    """The two versions picked in ``?a=&b=`` (by number), by default the two newest."""
    by_number = {version.version: version for version in versions}
    picked = []
    for key, default in (("a", 1), ("b", 0)):
        try:
            number = int(request.GET[key])
        except (KeyError, ValueError):
            number = versions[min(default, len(versions) - 1)].version if versions else None
        if number in by_number:
            picked.append(by_number[number])
    return picked


def _usable(versions) -> list[int]:
    """The numbers of the versions that may take an alias and run: the choices of the page's forms."""
    return [version.version for version in versions if version.is_usable]


@dataclass
class _DriftPanel:
    version: object
    report: object
    charts: list  # (FeatureDrift, its SVG chart)


def _drift_panels(versions: list) -> list[_DriftPanel]:
    """The drift watch of the versions behind an alias or predicted within the window, newest first."""
    reports = drift_reports(versions)
    return [
        _DriftPanel(
            version,
            report,
            [
                (
                    feature,
                    drift_chart_svg(
                        feature,
                        chart_id=f"drift-v{version.version}-{feature.feature}",
                        window_hours=report.window_hours,
                    ),
                )
                for feature in report.features
            ],
        )
        for version in versions
        if (report := reports[version.pk]).predictions or version.aliases.all() or version.canary_aliases.all()
    ]


def _model_page(
    request, model: RegisteredModel, *, job_form=None, alias_form=None, upload_form=None, status: int = 200
):
    versions = selectors.versions_compared(model)
    for version in versions:
        # Shown as declared, indented, in the page's "Tags, lineage and signature".
        version.input_schema_json = json.dumps(version.input_schema, indent=2) if version.input_schema else ""
        version.output_schema_json = json.dumps(version.output_schema, indent=2) if version.output_schema else ""
    aliases = list(model.aliases.select_related("version", "canary", "previous_version", "updated_by").order_by("name"))
    usable = _usable(versions)
    may_use = has_role(request.user, *WRITE_ROLES)
    may_change = model_may_change(request.user, model)
    context = {
        "model": model,
        "versions": versions,
        "aliases": aliases,
        "usable": usable,
        "compared": _compared(request, versions),
        "drift_panels": _drift_panels(versions),
        "drift_window_hours": settings.REGISTRY_DRIFT_WINDOW_HOURS,
        "drift_thresholds": (settings.REGISTRY_DRIFT_PSI_WARN, settings.REGISTRY_DRIFT_PSI_ALERT),
        "drift_min_predictions": settings.REGISTRY_DRIFT_MIN_PREDICTIONS,
        # The card of the newest version that has one: the model's description as its uploader wrote it.
        "card_version": next((version for version in versions if version.card_html), None),
        "targets": target_choices(aliases, usable),
        "may_use": may_use,
        "may_change": may_change,
        "job_form": job_form or (InferenceJobForm(aliases=aliases, usable=usable) if may_use else None),
        "alias_form": alias_form or (AliasMoveForm(usable=usable) if may_change else None),
        "upload_form": upload_form or (VersionUploadForm() if may_change else None),
        "jobs": selectors.model_jobs_visible_to(request.user, model, limit=RECENT_JOBS),
        "history": Paginator(selectors.alias_history(model), HISTORY_PER_PAGE).get_page(request.GET.get("history")),
        "recent_jobs": RECENT_JOBS,
        "finished_statuses": " ".join(FINISHED_STATUSES),
        "predict_url": reverse("registry:model-predict", kwargs={"name": model.name}),
        "versions_api_url": reverse("registry:version-list", kwargs={"name": model.name}),
        "max_inputs": settings.REGISTRY_SYNC_MAX_INPUTS,
        "max_input_chars": settings.REGISTRY_MAX_INPUT_CHARS,
    }
    return render(request, "registry/model_detail.html", context, status=status)


@login_required
@require_safe
def model_detail(request, name: str):
    """Versions, aliases, model card, comparison, try-it box and inference jobs of one model."""
    return _model_page(request, _model(request, name))


# --- Alias moves: a form, a confirmation page, then the move


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def alias_move_view(request, name: str):
    """GET asks to confirm the move the model page's form chose; POST (the confirmation) moves and redirects."""
    model = _model(request, name)
    _require_writer(request.user)
    form = AliasMoveForm(
        request.POST if request.method == "POST" else request.GET, usable=_usable(model.versions.all())
    )
    if not form.is_valid():
        return _model_page(request, model, alias_form=form, status=400)
    alias, number = form.cleaned_data["alias"], form.cleaned_data["version"]
    if request.method == "POST":
        try:
            alias_move(model=model, name=alias, version=model.versions.get(version=number), actor=request.user)
        except RegistryError as exc:
            messages.error(request, f"The alias was not moved: {exc.message}")
        else:
            messages.success(request, f"{alias} of {model.name} now points at v{number}.")
        return redirect(_model_url(model.name, "aliases"))
    current = next((item for item in model.aliases.select_related("version", "canary") if item.name == alias), None)
    context = {"model": model, "form": form, "alias": alias, "number": number, "current": current}
    return render(request, "registry/alias_move_confirm.html", context)


ALIAS_ACTIONS = {
    "promote": (alias_promote, "promoted: {split}"),
    "rollback": (alias_rollback, "rolled back: {split}"),
    "delete": (alias_delete, "removed"),
}


@login_required
@require_POST
def alias_action_view(request, name: str, alias: str, action: str):
    """Promote, roll back or remove an alias from the model page's buttons; the outcome shows as a message."""
    model = _model(request, name)
    _require_writer(request.user)
    if action not in ALIAS_ACTIONS:
        raise Http404(f"No alias action {action!r}.")
    service, done = ALIAS_ACTIONS[action]
    try:
        changed = service(model=model, name=alias, actor=request.user)
    except RegistryError as exc:
        messages.error(request, f"{alias} was not changed: {exc.message}")
    else:
        split = changed.split_text if changed is not None else ""
        messages.success(request, f"{alias} of {model.name} {done.format(split=split)}.")
    return redirect(_model_url(model.name, "aliases"))


# --- Uploads: a version's archive, a job's input file


def _upload_limited(setting: str, *, refused: str, section: str):
    """A POST view taking a file of the model ``name``: over ``setting`` MB the upload is refused as it arrives,
    as the API does, with the message ``refused: <why>`` back on the model's page at ``section``."""

    def decorate(view):
        checked = csrf_protect(view)

        @csrf_exempt
        @login_required
        @require_POST
        @wraps(view)
        def limited(request, name: str):
            # The limit must be in place before the body is parsed, which the CSRF check does: hence the inner check.
            request.upload_handlers.insert(0, UploadLimit(request, setting=setting))
            try:
                return checked(request, name)
            except PayloadTooLarge as exc:
                messages.error(request, f"{refused}: {exc.detail}")
                return redirect(_model_url(name, section))

        return limited

    return decorate


@_upload_limited("REGISTRY_MAX_ARTIFACT_MB", refused="The version was not uploaded", section="versions")
def version_upload_view(request, name: str):
    """Store an uploaded archive as the model's next version; its validation then shows live on the page."""
    model = _model(request, name)
    _require_writer(request.user)
    form = VersionUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return _model_page(request, model, upload_form=form, status=400)
    try:
        version = version_upload(model=model, upload=form.cleaned_data["artifact"], actor=request.user)
    except (RegistryError, StorageUnavailable) as exc:
        if exc.status == 403:
            messages.error(request, f"The version was not uploaded: {exc.message}")
            return redirect(_model_url(model.name, "versions"))
        _form_error(form, exc)
        return _model_page(request, model, upload_form=form, status=exc.status)
    except QueueUnavailable as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Uploaded v{version.version} of {model.name}; it is being validated (see below).")
    return redirect(_model_url(model.name, "versions"))


@_upload_limited("REGISTRY_JOB_MAX_FILE_MB", refused="The job was not started", section="jobs")
def job_start(request, name: str):
    """Start a batch or evaluation job over an uploaded file; over REGISTRY_JOB_MAX_FILE_MB it is refused as the
    upload arrives, as the API does."""
    model = _model(request, name)
    _require_writer(request.user)
    aliases = list(model.aliases.select_related("version", "canary"))
    form = InferenceJobForm(request.POST, request.FILES, aliases=aliases, usable=_usable(model.versions.all()))
    if not form.is_valid():
        return _model_page(request, model, job_form=form, status=400)
    data = form.cleaned_data
    try:
        job = inference_job_create(
            owner=request.user, model=model, upload=data["file"], name=data["name"], **data["target"]
        )
    except RegistryError as exc:
        _form_error(form, exc)
        return _model_page(request, model, job_form=form, status=exc.status)
    except QueueUnavailable as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            f"{job.get_kind_display()} job #{job.pk} queued over {job.progress_total:,} rows; "
            "its progress shows below as it runs.",
        )
    return redirect(_model_url(model.name, "jobs"))


@login_required
@require_safe
def job_result(request, pk: int):
    """The results file of a completed job the user may see."""
    _require_reader(request.user)
    job = get_object_or_404(selectors.inference_jobs_visible_to(request.user), pk=pk)
    try:
        file, filename, content_type = inference_job_result(job)
    except RegistryError as exc:
        messages.error(request, exc.message)
        return redirect(_model_url(job.version.model.name, "jobs"))
    return StreamedFileResponse(file, as_attachment=True, filename=filename, content_type=content_type)
