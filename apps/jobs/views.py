"""The staff page of workers and queues (beside the System page): read it, drain a worker, cancel a job.

The actions are POSTs inside the sudo window; without it the user re-authenticates and comes back to the page
(a POST cannot be replayed), as in the admin's actions.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from apps.accounts.sudo import sudo_is_fresh, sudo_redirect
from apps.core.choices import Role
from apps.core.errors import ApplicationError
from apps.core.permissions import has_role

from .selectors import RATE_MINUTES_DEFAULT, RATE_MINUTES_MAX, held_jobs_overview, queues_overview, workers_overview
from .services import staff_job_cancel, worker_drain

# How often the page reloads itself while "Refresh every 10 s" is on (static/js/workers.js reads it).
REFRESH_SECONDS = 10


def _require_staff(request) -> None:
    if not request.user.is_staff:
        raise PermissionDenied("The workers and queues page is for staff members.")


def _minutes(request) -> tuple[int, str]:
    raw = request.GET.get("minutes", "")
    if not raw:
        return RATE_MINUTES_DEFAULT, ""
    if raw.isdigit() and 1 <= int(raw) <= RATE_MINUTES_MAX:
        return int(raw), ""
    problem = f"The window must be a whole number of minutes from 1 to {RATE_MINUTES_MAX}; showing the last "
    return RATE_MINUTES_DEFAULT, problem + f"{RATE_MINUTES_DEFAULT}."


@login_required
@require_safe
def workers(request):
    """Live workers with their jobs and versions, and each queue's depth and rate, for staff."""
    _require_staff(request)
    minutes, window_problem = _minutes(request)
    views = workers_overview()
    context = {
        "workers": views,
        "queues": queues_overview(minutes=minutes, workers=views),
        "held": held_jobs_overview(),
        "minutes": minutes,
        "minutes_max": RATE_MINUTES_MAX,
        "window_problem": window_problem,
        "may_act": has_role(request.user, Role.ADMIN),
        "sudo_fresh": sudo_is_fresh(request),
        "refresh_seconds": REFRESH_SECONDS,
    }
    return render(request, "jobs/workers.html", context)


def _act(request, doing: str, action) -> object:
    """Run ``action()`` for a staff administrator inside the sudo window, saying how it went; back to the page."""
    _require_staff(request)
    here = reverse("workers_page:index")
    if not has_role(request.user, Role.ADMIN):
        raise PermissionDenied(f"Only administrators may {doing}.")
    if not sudo_is_fresh(request):
        messages.warning(request, f"Nothing was done: {doing} needs your password again. Confirm it, then retry.")
        return sudo_redirect(request, here)
    try:
        done = action()
    except ApplicationError as exc:
        messages.error(request, f"Nothing was done: {exc.message}")
    else:
        messages.success(request, done)
    return redirect(here)


@login_required
@require_POST
def drain(request):
    """Drain the worker named in the form: it finishes its running jobs and takes no more."""
    hostname = request.POST.get("hostname", "").strip()

    def action() -> str:
        presence = worker_drain(hostname=hostname, actor=request.user)
        queues = ", ".join(presence.drained_queues) or "no queue"
        return f"{presence.hostname} is draining: it finishes what it runs and takes nothing more from {queues}."

    return _act(request, "draining a worker", action)


@login_required
@require_POST
def cancel(request, kind: str, job_id: int):
    """Cancel one job through the job layer's cancel."""

    def action() -> str:
        job = staff_job_cancel(kind_name=kind, job_id=job_id, actor=request.user)
        return f"{job} is {job.status}."

    return _act(request, "cancelling a job", action)
