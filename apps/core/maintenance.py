"""The factory that turns a service call into a recorded maintenance task."""

from collections.abc import Callable

from celery import shared_task

from .services import maintenance_run_record


def maintenance_task(name: str, service: Callable[[], str], *, task_name: str = ""):
    """Register Celery task ``maintenance.<name>`` (or ``task_name``) that runs ``service``.

    Task names starting with ``maintenance.`` are routed to the maintenance
    queue; give another ``task_name`` a route in CELERY_TASK_ROUTES.

    Every run is recorded as a ``MaintenanceRun``: start, end, outcome, and the
    message the service returns or the error it raised.
    """

    task_name = task_name or f"maintenance.{name}"

    @shared_task(bind=True, name=task_name)
    def run(task) -> str:
        with maintenance_run_record(
            task_name=task_name, celery_task_id=task.request.id or "", worker=task.request.hostname or ""
        ) as record:
            record.message = service()
        return record.message

    run.__doc__ = service.__doc__
    return run
