"""Pages people use: the landing redirect and the dashboard."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from ..health import readiness_report
from ..selectors import maintenance_runs_recent


def home(request):
    """Signed-in users go to the dashboard, everyone else to the login page."""
    return redirect("dashboard" if request.user.is_authenticated else "login")


@login_required
def dashboard(request):
    context = {"live_events_path": "/ws/events/"}
    if request.user.is_staff:
        context["readiness"] = readiness_report()
        context["maintenance_runs"] = maintenance_runs_recent(limit=10)
    return render(request, "core/dashboard.html", context)
