"""Pages people use: the landing redirect, and the staff's System page (readiness and maintenance)."""

from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_safe

from ..health import readiness_report
from ..selectors import maintenance_runs_summary

# The System page's window of maintenance runs, and how many failures it lists one by one.
SYSTEM_RUNS_HOURS = 24
SYSTEM_FAILURES_LISTED = 50


def home(request):
    """Signed-in users go to the dashboard, everyone else to the login page."""
    return redirect("dashboard:index" if request.user.is_authenticated else "login")


@login_required
@require_safe
def system(request):
    """Readiness checks and the last day's maintenance runs, for staff."""
    if not request.user.is_staff:
        raise PermissionDenied("The System page is for staff members.")
    since = timezone.now() - timedelta(hours=SYSTEM_RUNS_HOURS)
    context = {
        "readiness": readiness_report(),
        "runs": maintenance_runs_summary(since=since, failures_limit=SYSTEM_FAILURES_LISTED),
        "runs_hours": SYSTEM_RUNS_HOURS,
        "failures_listed": SYSTEM_FAILURES_LISTED,
    }
    return render(request, "core/system.html", context)
