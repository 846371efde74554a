"""Pages people use: the landing redirect, and the portal-wide part of the dashboard."""

from django.shortcuts import redirect

from ..health import readiness_report
from ..selectors import maintenance_runs_recent


def home(request):
    """Signed-in users go to the dashboard, everyone else to the login page."""
    return redirect("dashboard:index" if request.user.is_authenticated else "login")


def operations_context(request) -> dict:
    """What templates/core/dashboard.html shows: live events, and readiness and maintenance runs for staff."""
    context = {"live_events_path": "/ws/events/"}
    if request.user.is_staff:
        context["readiness"] = readiness_report()
        context["maintenance_runs"] = maintenance_runs_recent(limit=10)
    return context
