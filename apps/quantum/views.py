"""Dashboard pages for quantum jobs: the live overview with the submit form, and one job's page.

Thin doors: reads come from ``selectors``, the one write (cancel) goes through ``services``; submitting
happens in the browser against the API, so its validation messages are the API's own.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST, require_safe

from apps.core.permissions import WRITE_ROLES, has_role
from apps.jobs.choices import FINISHED_STATUSES, JobStatus
from apps.jobs.lifecycle import JobStateError

from .choices import SimulationMethod
from .rendering import circuit_text_drawing, expectation_chart_svg, histogram_svg, observable_label
from .selectors import (
    LARGE_FIELDS,
    eta_seconds,
    job_may_change,
    jobs_finished_per_minute,
    jobs_visible_to,
    queue_positions,
    status_counts,
    throughput_per_second,
)
from .services import job_cancel

RECENT_JOBS = 25
# A sweep's table shows this many parameter sets; the API has them all.
SWEEP_TABLE_ROWS = 200
CHART_MINUTES = 30
# The chart counts jobs that ran to an end, as the throughput behind the ETA does.
CHART_STATUSES = (JobStatus.COMPLETED, JobStatus.FAILED)
GHZ_EXAMPLE = (
    'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[5];\ncreg c[5];\nh q[0];\n'
    "cx q[0],q[1];\ncx q[1],q[2];\ncx q[2],q[3];\ncx q[3],q[4];\nmeasure q -> c;\n"
)


def _visible_job(request, pk: int):
    # Others' jobs are simply not found, as in the API.
    return get_object_or_404(jobs_visible_to(request.user).select_related("owner"), pk=pk)


def _with_queue_positions(jobs: list) -> list:
    positions = queue_positions(jobs)
    for job in jobs:
        job.queue_position = positions.get(job.id)
    return jobs


@login_required
@require_safe
def dashboard(request):
    """Job counts, the submit form, recent jobs and the jobs-per-minute chart, kept live by
    static/quantum/dashboard.js; readiness and maintenance are on the System page (apps.core.views.pages)."""
    jobs = jobs_visible_to(request.user)
    counts = status_counts(jobs)
    context = {
        "status_counts": [(status.value, status.label, counts[status.value]) for status in JobStatus],
        "jobs": _with_queue_positions(list(jobs.select_related("owner").defer(*LARGE_FIELDS)[:RECENT_JOBS])),
        "recent_jobs": RECENT_JOBS,
        "chart_minutes": CHART_MINUTES,
        "chart_statuses": " ".join(CHART_STATUSES),
        "finished_per_minute": jobs_finished_per_minute(jobs, since=timezone.now() - timedelta(minutes=CHART_MINUTES)),
        "now": timezone.now(),
        "may_submit": has_role(request.user, *WRITE_ROLES),
        "submit_url": reverse("quantum:job-list"),
        "methods": SimulationMethod.choices,
        "ghz_example": GHZ_EXAMPLE,
        "max_shots": settings.QUANTUM_MAX_SHOTS,
    }
    return render(request, "quantum/dashboard.html", context)


@login_required
@require_safe
def status_counts_json(request):
    """Jobs by status, for a dashboard that reconnects after missing events."""
    return JsonResponse({"counts": status_counts(jobs_visible_to(request.user))})


@login_required
@require_safe
def job_row(request, pk: int):
    """One row of the recent-jobs table, for a job the dashboard first hears of over the websocket."""
    job = _with_queue_positions([_visible_job(request, pk)])[0]
    return render(request, "quantum/_job_row.html", {"job": job})


@login_required
@require_safe
def job_detail(request, pk: int):
    """A job's settings, live status, circuit drawing and, once completed, its histogram."""
    job = _with_queue_positions([_visible_job(request, pk)])[0]
    context = {
        "job": job,
        "eta_seconds": eta_seconds(job.queue_position, throughput_per_second()) if job.queue_position else None,
        "may_cancel": job_may_change(request.user, job),
        "drawing": circuit_text_drawing(job.source, job.qasm_version, job.measure_all),
        "finished_statuses": " ".join(FINISHED_STATUSES),
        **_result_context(job),
    }
    return render(request, "quantum/job_detail.html", context)


@login_required
@require_safe
def job_result(request, pk: int):
    """The result part of the job page, fetched by the page when the job finishes while it is open."""
    job = _visible_job(request, pk)
    return render(request, "quantum/_job_result.html", {"job": job, **_result_context(job)})


def _result_context(job) -> dict:
    """The histogram of counts; for sweeps and estimator jobs a table of the sets and, for an estimator sweep
    over one parameter, the chart of each expectation value over it."""
    context = {"histogram": histogram_svg(job.counts) if job.counts is not None else None}
    if job.observables:
        context["observable_labels"] = [observable_label(terms) for terms in job.observables]
    if not job.results:
        return context
    rows = []
    for index, entry in enumerate(job.results[:SWEEP_TABLE_ROWS]):
        row = {"index": index, "parameters": [entry["parameters"].get(name) for name in job.parameters]}
        if "expectation_values" in entry:
            row["estimates"] = list(zip(entry["expectation_values"], entry["std_errors"], strict=True))
        else:
            counts = entry["counts"]
            row["top"] = max(counts.items(), key=lambda item: (item[1], item[0])) if counts else None
            row["outcomes"] = len(counts)
        rows.append(row)
    context.update(sweep_rows=rows, sweep_hidden=max(len(job.results) - SWEEP_TABLE_ROWS, 0))
    if job.primitive == "estimator" and len(job.parameters) == 1 and job.parameter_sets:
        context["chart"] = expectation_chart_svg(job.parameters[0], job.results, job.observables)
    return context


@login_required
@require_POST
def job_cancel_view(request, pk: int):
    """Cancel from the job page; refusals come back as a message on the page."""
    job = _visible_job(request, pk)
    try:
        job = job_cancel(job=job, actor=request.user)
    except (PermissionError, JobStateError) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Job #{job.pk} is {job.status}.")
    return redirect("dashboard:job", pk=job.pk)
