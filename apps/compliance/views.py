"""The compliance officer's page at /compliance/: request a report, watch it, read its signed manifest, download it.

Thin doors: the form's values go to ``services.report_request`` (whose messages become form errors), the
download through ``services.report_download``; both need sudo mode with a fresh authenticator code, as in the API.
The manifest goes out through ``services.report_manifest`` (audited; without sudo, as in the API: it holds
hashes, counts and summaries, not the evidence's rows).
"""

from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_http_methods, require_safe

from apps.accounts.sudo import sudo_redirect, sudo_second_factor_fresh
from apps.core.queueing import QueueUnavailable
from apps.core.storage import StorageUnavailable
from apps.jobs.choices import JobStatus

from . import selectors, services
from .api.views import report_file_response, report_manifest_response
from .choices import ReportFormat, ReportKind
from .pdf_text import shown, title

RECENT_REPORTS = 50
TEMPLATE = "compliance/index.html"


class ReportForm(forms.Form):
    kind = forms.ChoiceField(choices=ReportKind.choices)
    start_date = forms.DateField(
        widget=forms.DateInput(attrs={"type": "date"}),
        label="From",
        error_messages={"required": "Pick the first day of the period."},
    )
    end_date = forms.DateField(
        widget=forms.DateInput(attrs={"type": "date"}),
        label="To (included)",
        error_messages={"required": "Pick the last day of the period."},
    )
    format = forms.ChoiceField(choices=ReportFormat.choices, initial=ReportFormat.PDF)
    username = forms.CharField(required=False, help_text="Data-subject export: whose data.")
    action_prefix = forms.CharField(required=False, help_text="Audit trail: only actions starting with this.")
    actor = forms.CharField(required=False, help_text="Audit trail: only events by this username.")

    def other_fields(self) -> list:
        """The fields after the period, which the page lays out with its presets."""
        return [self[name] for name in self.fields if name not in ("kind", "start_date", "end_date")]

    def period_bounds(self) -> tuple:
        return services.period_from_dates(self.cleaned_data["start_date"], self.cleaned_data["end_date"])

    def filters(self) -> dict:
        names = services.ALLOWED_FILTERS.get(self.cleaned_data["kind"], ())
        return {name: self.cleaned_data[name] for name in names if self.cleaned_data.get(name)}


# Where a service error about a parameter shows on the form.
FORM_FIELDS = {"period_start": "start_date", "period_end": "end_date", "filters": None}


def _require_officer(request) -> None:
    if not selectors.report_access_allowed(request.user):
        raise PermissionDenied("Compliance reports are for compliance officers and administrators.")


def _page(request, form: ReportForm, *, status: int = 200):
    from .signing import key_fingerprint

    context = {
        "form": form,
        "period_presets": services.period_presets(),
        "reports": selectors.reports_recent(request.user, limit=RECENT_REPORTS),
        "recent_reports": RECENT_REPORTS,
        "sudo_fresh": sudo_second_factor_fresh(request),
        "sudo_window": settings.SUDO_WINDOW_MINUTES,
        "max_period_days": settings.REPORT_MAX_PERIOD_DAYS,
        "key_fingerprint": key_fingerprint(),
    }
    return render(request, TEMPLATE, context, status=status)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def index(request):
    """The form and the past reports; a POST requests a report (inside the sudo window)."""
    _require_officer(request)
    if request.method != "POST":
        # Coming back from re-authentication, the form keeps what was picked.
        _, start, end = services.period_presets()[services.DEFAULT_PERIOD_PRESET]
        initial = {"start_date": start, "end_date": end}
        initial |= {name: request.GET[name] for name in ReportForm.base_fields if name in request.GET}
        return _page(request, ReportForm(initial=initial))
    form = ReportForm(request.POST)
    if not sudo_second_factor_fresh(request):
        messages.warning(
            request,
            "Generating a report needs your password and a fresh authenticator code. Confirm them, then generate "
            "the report again.",
        )
        kept = {name: value for name, value in request.POST.items() if name in ReportForm.base_fields and value}
        back = reverse("compliance_page:index")
        if kept:
            back = f"{back}?{urlencode(kept)}"
        return sudo_redirect(request, back)
    if not form.is_valid():
        return _page(request, form, status=400)
    try:
        start, end = form.period_bounds()
        report = services.report_request(
            kind=form.cleaned_data["kind"],
            fmt=form.cleaned_data["format"],
            period_start=start,
            period_end=end,
            filters=form.filters(),
            actor=request.user,
        )
    except services.ReportError as exc:
        field = FORM_FIELDS.get(exc.field, exc.field)
        if exc.field == "filters":
            field = "username" if form.cleaned_data["kind"] == ReportKind.SUBJECT_EXPORT else None
        form.add_error(field if field in form.fields else None, exc.message)
        return _page(request, form, status=400)
    except QueueUnavailable as exc:
        # The report is listed below as failed; the form keeps the choice for asking again.
        form.add_error(None, str(exc))
        return _page(request, form)
    messages.success(request, f"Report #{report.pk} is queued: {report}. It appears below as it is generated.")
    return redirect("compliance_page:index")


@login_required
@require_safe
def download(request, pk: int):
    """The signed file; outside the sudo window, re-authenticate first and come straight back here."""
    _require_officer(request)
    report = get_object_or_404(selectors.reports_visible_to(request.user), pk=pk)
    if not sudo_second_factor_fresh(request):
        return sudo_redirect(request, reverse("compliance_page:download", args=[report.pk]))
    try:
        file, filename = services.report_download(report=report, actor=request.user)
    except (services.ReportError, StorageUnavailable) as exc:
        messages.error(request, exc.message)
        return redirect("compliance_page:index")
    return report_file_response(report, file, filename)


@login_required
@require_safe
def detail(request, pk: int):
    """One report: its status and, once completed, its signed manifest as a table with the downloads."""
    _require_officer(request)
    report = get_object_or_404(selectors.reports_visible_to(request.user), pk=pk)
    manifest = report.manifest if report.status == JobStatus.COMPLETED else None
    summaries = (manifest or {}).get("summaries", {})
    context = {
        "report": report,
        "manifest": manifest,
        "generated_at": parse_datetime(manifest["generated_at"]) if manifest else None,
        # Each section's rows and its summary's facts side by side (a template cannot look a dict up by a name).
        # Named and written as the PDF names and writes them, not as stored ("without_mfa").
        "sections": [
            (title(name), rows, {title(key): shown(value) for key, value in summaries.get(name, {}).items()})
            for name, rows in (manifest or {}).get("row_counts", {}).items()
        ],
        "sudo_window": settings.SUDO_WINDOW_MINUTES,
    }
    return render(request, "compliance/detail.html", context)


@login_required
@require_safe
def manifest(request, pk: int):
    """The signed manifest as a .json file, to verify the report's file elsewhere (audited)."""
    _require_officer(request)
    report = get_object_or_404(selectors.reports_visible_to(request.user), pk=pk)
    try:
        return report_manifest_response(report, request.user)
    except services.ReportError as exc:
        messages.error(request, exc.message)
        return redirect("compliance_page:detail", report.pk)
