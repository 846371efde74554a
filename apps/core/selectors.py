"""Read queries of the portal core, shared by API, admin and pages."""

from django.db.models import Count, Max, OuterRef, QuerySet, Subquery

from .choices import MaintenanceStatus
from .models import MaintenanceRun


def maintenance_runs() -> QuerySet[MaintenanceRun]:
    return MaintenanceRun.objects.all()


def maintenance_runs_summary(*, since, failures_limit: int) -> dict:
    """Maintenance since ``since`` for the System page: failures one by one (newest first), runs still going,
    and the successful runs grouped by task (how many, the last one's time and message), newest group first.

    A task scheduled every few minutes succeeds hundreds of times a day: grouped, it is one line, and a
    failure is not buried under its successes.
    """
    runs = maintenance_runs().filter(started_at__gte=since)
    succeeded = runs.filter(status=MaintenanceStatus.SUCCEEDED)
    last_success = succeeded.filter(task_name=OuterRef("task_name")).order_by("-started_at", "-id")
    return {
        "failed": list(runs.filter(status=MaintenanceStatus.FAILED)[:failures_limit]),
        "running": list(runs.filter(status=MaintenanceStatus.RUNNING)),
        "succeeded": list(
            succeeded.order_by()
            .values("task_name")
            .annotate(
                count=Count("id"),
                last_started_at=Max("started_at"),
                last_message=Subquery(last_success.values("message")[:1]),
            )
            .order_by("-last_started_at")
        ),
    }
