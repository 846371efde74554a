"""Celery tasks of the model registry: doors into its services."""

import os

from celery import shared_task

from apps.core.maintenance import maintenance_task

from . import drift, inference, services


@shared_task(name="registry.validate_version")
def validate_version(version_id: int) -> str:
    """Load a newly uploaded version offline and mark it ready or invalid."""
    return services.version_validate(version_id=version_id)


@shared_task(bind=True, name="registry.run_inference_job")
def run_inference_job(task, job_id: int) -> str:
    """Run a batch inference or evaluation job (again after a lost worker)."""
    worker = f"{task.request.hostname or 'worker'} pid {os.getpid()}"
    return inference.inference_job_run(job_id=job_id, task_id=task.request.id or "", worker=worker)


registry_drift_check = maintenance_task("registry_drift_check", drift.drift_check)
