"""Quantum jobs in the admin: a cheap list, a read-only detail with pictures, cancel and re-run through the services.

Jobs are created by the services only (the dashboard and the API submit them), so
the admin neither adds, edits nor deletes them.
"""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.template.defaultfilters import pluralize
from django.utils.html import format_html, format_html_join
from unfold.admin import ModelAdmin

from apps.core.admin_mixins import PortalFormatsAdminMixin, ServiceWrittenAdminMixin, queue_refusal_message
from apps.core.paginators import EstimatedCountPaginator
from apps.core.permissions import WRITE_ROLES, has_role
from apps.core.queueing import QueueUnavailable
from apps.jobs.choices import JobStatus
from apps.jobs.lifecycle import JobStateError

from . import selectors, services
from .models import QuantumJob
from .rendering import circuit_text_drawing, expectation_chart_svg, histogram_svg
from .selectors import LARGE_FIELDS

# One admin action touches at most this many jobs: each goes through its service (and audit) one by one.
MAX_ACTION_JOBS = services.MAX_BATCH_JOBS
# Outcomes beyond these are summed up, so that a large selection does not flood the page.
MAX_LISTED = 5
# Programs are up to 1 MB; the page shows their beginning (the API returns them whole).
MAX_SHOWN_SOURCE_CHARS = 100_000
# Results of a large sweep (with bitstrings) run to megabytes; the page shows their beginning.
MAX_SHOWN_RESULTS_CHARS = 50_000


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 1:
        return f"{value * 1000:.1f} ms"
    if value < 120:
        return f"{value:.2f} s"
    minutes, seconds = divmod(round(value), 60)
    return f"{minutes} min {seconds} s"


def _listed(items: list[str], separator: str) -> str:
    more = len(items) - MAX_LISTED
    return separator.join(items[:MAX_LISTED]) + (f"{separator}and {more:,} more" if more > 0 else "")


def _json_preview(value) -> str:
    if value is None:
        return "—"
    text = json.dumps(value, indent=1)
    if len(text) > MAX_SHOWN_RESULTS_CHARS:
        hidden = len(text) - MAX_SHOWN_RESULTS_CHARS
        text = f"{text[:MAX_SHOWN_RESULTS_CHARS]}\n… {hidden:,} more characters (the API returns them whole)"
    return format_html('<pre tabindex="0" style="max-height: 24em; overflow: auto">{}</pre>', text)


class JobChangeList(ChangeList):
    def get_queryset(self, request, exclude_parameters=None):
        return super().get_queryset(request, exclude_parameters).defer(*LARGE_FIELDS)


@admin.register(QuantumJob)
class QuantumJobAdmin(PortalFormatsAdminMixin, ServiceWrittenAdminMixin, ModelAdmin):
    list_display = ["id", "name", "owner", "status", "num_qubits", "shots", "method", "duration", "created_at"]
    list_display_links = ["id", "name"]
    list_filter = ["status", "method", "queue", "qasm_version", "created_at"]
    list_select_related = ["owner"]
    # The job id is matched in get_search_results: an exact match on an integer column keeps its index usable.
    search_fields = ["name", "=owner__username"]
    search_help_text = "A job id (42 or #42), the exact owner username, or part of the job name."
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    actions = ["cancel_jobs", "rerun_jobs"]
    fieldsets = [
        (
            None,
            {"fields": ["id", "name", "owner", "tags", "status", "status_reason", "queue_place", "error", "rerun_of"]},
        ),
        ("Result", {"fields": ["histogram", "expectation_chart", "results_text"]}),
        (
            "Primitive",
            {"fields": ["primitive", "parameters", "sweep_size", "parameter_sets_text", "observables", "precision"]},
        ),
        (
            "Circuit",
            {
                "fields": [
                    "qasm_version",
                    "measure_all",
                    "num_qubits",
                    "num_clbits",
                    "depth",
                    "gate_count_table",
                    "drawing",
                    "source_text",
                ]
            },
        ),
        (
            "Simulation",
            {
                "fields": [
                    "method",
                    "shots",
                    "bitstrings",
                    "seed",
                    "device",
                    "noise_rates",
                    "priority",
                    "estimated_memory",
                    "estimated_seconds",
                    "queue",
                ]
            },
        ),
        (
            "Timings",
            {
                "fields": [
                    "created_at",
                    "started_at",
                    "finished_at",
                    "queue_wait",
                    "duration",
                    "updated_at",
                    "attempts",
                    "worker",
                    "celery_task_id",
                ]
            },
        ),
    ]
    readonly_fields = [name for _, options in fieldsets for name in options["fields"]]

    def get_queryset(self, request):
        return selectors.jobs_visible_to(request.user)

    def get_changelist(self, request, **kwargs):
        return JobChangeList

    def get_search_results(self, request, queryset, search_term):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        job_id = search_term.strip().removeprefix("#")
        if job_id.isdigit() and int(job_id) < 2**63:
            results |= queryset.filter(pk=int(job_id))
        return results, may_have_duplicates

    def has_operate_permission(self, request) -> bool:
        """Who sees the cancel and re-run actions; the services still check each job's owner."""
        return has_role(request.user, *WRITE_ROLES)

    # --- Columns and detail fields

    @admin.display(description="Duration", ordering="duration_seconds")
    def duration(self, job: QuantumJob) -> str:
        return _seconds(job.duration_seconds)

    @admin.display(description="Queue wait")
    def queue_wait(self, job: QuantumJob) -> str:
        if job.started_at is None:
            return "—"
        return _seconds((job.started_at - job.created_at).total_seconds())

    @admin.display(description="Place in queue")
    def queue_place(self, job: QuantumJob) -> str:
        if job.status != JobStatus.QUEUED:
            return "—"
        position = selectors.queue_positions([job]).get(job.id)
        eta = selectors.eta_seconds(position, selectors.throughput_per_second())
        return f"{position:,} (starts in about {_seconds(eta)})" if eta is not None else f"{position:,}"

    @admin.display(description="Counts")
    def histogram(self, job: QuantumJob) -> str:
        if job.counts is None:
            return f"No counts: the job is {job.get_status_display().lower()}."
        return format_html('<div style="overflow-x: auto">{}</div>', histogram_svg(job.counts))

    @admin.display(description="Expectation values")
    def expectation_chart(self, job: QuantumJob) -> str:
        if not (job.results and job.primitive == "estimator" and len(job.parameters) == 1 and job.parameter_sets):
            return "—"
        chart = expectation_chart_svg(job.parameters[0], job.results, job.observables)
        return format_html('<div style="overflow-x: auto">{}</div>', chart)

    @admin.display(description="Results (one per parameter set)")
    def results_text(self, job: QuantumJob) -> str:
        return _json_preview(job.results)

    @admin.display(description="Parameter sets")
    def parameter_sets_text(self, job: QuantumJob) -> str:
        return _json_preview(job.parameter_sets)

    @admin.display(description="Gate counts")
    def gate_count_table(self, job: QuantumJob) -> str:
        if not job.gate_counts:
            return "—"
        rows = sorted(job.gate_counts.items(), key=lambda item: (-item[1], item[0]))
        return format_html(
            '<table class="gate-counts"><thead><tr><th>Operation</th><th>Count</th></tr></thead><tbody>{}</tbody>'
            "</table>",
            format_html_join("", "<tr><td>{}</td><td>{}</td></tr>", ((name, f"{count:,}") for name, count in rows)),
        )

    @admin.display(description="Drawing")
    def drawing(self, job: QuantumJob) -> str:
        return format_html(
            '<pre class="circuit-drawing" tabindex="0" style="overflow-x: auto; line-height: 1.15">{}</pre>',
            circuit_text_drawing(job.source, job.qasm_version, job.measure_all),
        )

    @admin.display(description="Program")
    def source_text(self, job: QuantumJob) -> str:
        source = job.source
        if len(source) > MAX_SHOWN_SOURCE_CHARS:
            hidden = len(source) - MAX_SHOWN_SOURCE_CHARS
            source = (
                f"{source[:MAX_SHOWN_SOURCE_CHARS]}\n… {hidden:,} more characters (the API returns the whole program)"
            )
        return format_html(
            '<pre class="circuit-source" tabindex="0" style="max-height: 32em; overflow: auto">{}</pre>', source
        )

    @admin.display(description="Noise")
    def noise_rates(self, job: QuantumJob) -> str:
        noise = job.noise
        if noise is None:
            return "None (ideal simulation)"
        if job.device:
            return f"The calibrated noise of {job.device}"
        return ", ".join(f"{name} {rate:g}" for name, rate in noise.items())

    @admin.display(description="Estimated memory")
    def estimated_memory(self, job: QuantumJob) -> str:
        size = job.estimated_memory_bytes
        if size is None:
            return "— (does not grow as 2ⁿ with this method)"
        return f"{size / 2**20:,.1f} MiB"

    # --- Actions

    @admin.action(description="Cancel selected jobs", permissions=["operate"])
    def cancel_jobs(self, request, queryset):
        jobs = self._selected(request, queryset)
        stopped, stopping, refused = 0, 0, []
        for job in jobs:
            try:
                job = services.job_cancel(job=job, actor=request.user)
            except (JobStateError, PermissionError) as exc:
                refused.append(f"#{job.pk}: {exc}")
                continue
            if job.status == JobStatus.CANCELLED:
                stopped += 1
            else:
                stopping += 1
        if stopped:
            self.message_user(request, f"{stopped} job{pluralize(stopped)} cancelled.", messages.SUCCESS)
        if stopping:
            self.message_user(
                request,
                f"{stopping} running job{pluralize(stopping)} asked to stop; "
                f"{pluralize(stopping, 'it reaches,they reach')} cancelled within seconds.",
                messages.SUCCESS,
            )
        self._report_refusals(request, refused, "not cancelled")

    @admin.action(description="Re-run selected jobs (as copies)", permissions=["operate"])
    def rerun_jobs(self, request, queryset):
        copies, refused = [], []
        jobs = self._selected(request, queryset)
        for index, job in enumerate(jobs):
            try:
                copies.append(services.job_rerun(job=job, actor=request.user))
            except (PermissionError, services.JobValidationError, services.JobQuotaError) as exc:
                refused.append(f"#{job.pk}: {exc}")
            except QueueUnavailable as exc:
                queue_refusal_message(self, request, exc, left=len(jobs) - index - 1)
                break
        if copies:
            listed = _listed([f"#{copy.pk} (of #{copy.rerun_of_id})" for copy in copies], ", ")
            self.message_user(
                request, f"{len(copies)} cop{pluralize(len(copies), 'y,ies')} queued: {listed}.", messages.SUCCESS
            )
        self._report_refusals(request, refused, "not re-run")

    def _selected(self, request, queryset) -> list[QuantumJob]:
        jobs = list(queryset.select_related("owner").order_by("id")[: MAX_ACTION_JOBS + 1])
        if len(jobs) > MAX_ACTION_JOBS:
            self.message_user(
                request,
                f"More than {MAX_ACTION_JOBS} jobs were selected; an action handles at most {MAX_ACTION_JOBS} "
                "at a time. Narrow the list with a filter or a search.",
                messages.ERROR,
            )
            return []
        return jobs

    def _report_refusals(self, request, refused: list[str], verb: str) -> None:
        if not refused:
            return
        self.message_user(
            request, f"{len(refused)} job{pluralize(len(refused))} {verb}: {_listed(refused, '; ')}", messages.WARNING
        )
