"""Celery tasks of quantum jobs: doors into apps.quantum.services."""

import os

from celery import shared_task

from . import services


@shared_task(bind=True, name="quantum.run_jobs", acks_late=True, reject_on_worker_lost=True)
def run_jobs(task, job_ids: list[int]) -> str:
    """Run these jobs on the simulator (those still queued; again after a lost worker)."""
    worker = f"{task.request.hostname or 'worker'} pid {os.getpid()}"
    return services.jobs_run(job_ids=job_ids, task_id=task.request.id or "", worker=worker)
