"""Celery tasks of compliance reports: doors into apps.compliance.services."""

import os

from celery import shared_task

from apps.core.maintenance import maintenance_task

from . import services


@shared_task(bind=True, name="compliance.generate_report", acks_late=True, reject_on_worker_lost=True)
def generate_report(task, report_id: int) -> str:
    """Generate this report (skipped when it is gone or already finished; started again after a lost worker)."""
    worker = f"{task.request.hostname or 'worker'} pid {os.getpid()}"
    return services.report_generate(report_id=report_id, task_id=task.request.id or "", worker=worker)


reports_monthly = maintenance_task("reports_monthly", services.monthly_reports_request)
reports_prune_daily = maintenance_task("reports_prune_daily", services.reports_prune)
