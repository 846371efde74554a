"""Read queries of the portal core, shared by API, admin and pages."""

from django.db.models import QuerySet

from .models import MaintenanceRun


def maintenance_runs() -> QuerySet[MaintenanceRun]:
    return MaintenanceRun.objects.all()


def maintenance_runs_recent(*, limit: int) -> list[MaintenanceRun]:
    return list(maintenance_runs()[:limit])
