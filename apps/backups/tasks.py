"""Backup jobs (the backups.run_job task), and the scheduled backups: the nightly backup, the weekly verification
by restore, and the daily pruning.

The scheduled ones run on a worker already: each makes its jobs and runs them at once, in the maintenance task,
whose run records how they went (a lost worker's job is requeued like any other).
"""

from celery import shared_task

from apps.core.maintenance import maintenance_task
from apps.jobs.choices import JobStatus

from . import retention, services, staleness
from .choices import BackupOperation, BackupStatus
from .jobs import backup_job_run, backup_job_run_here
from .selectors import backups_to_verify_weekly


@shared_task(bind=True, name="backups.run_job", acks_late=True)
def run_job(task, job_id: int) -> None:
    """Run one backup job (create or verify); the job's row says how it went."""
    backup_job_run(job_id, task_id=task.request.id or "", worker=task.request.hostname or "")


def backup_jobs_send(jobs: list) -> None:
    """Put the queued backup jobs on the broker (the maintenance queue, CELERY_TASK_ROUTES)."""
    for job in jobs:
        run_job.apply_async(args=[job.pk])


def backup_create_scheduled() -> str:
    """Back up the database (triggered by the schedule), as a job run here; a failed backup fails the run."""
    job = backup_job_run_here(BackupOperation.CREATE)
    if job.status != JobStatus.COMPLETED:
        raise services.BackupError(f"Backup job #{job.pk} {job.status}: {job.error}")
    backup = job.backup
    return f"Backup #{backup.pk} completed: {backup.size_bytes} bytes in {backup.duration_seconds} s."


def backups_verify_scheduled() -> str:
    """Verify the newest backup and one random older one by restoring them into a scratch database (a job each,
    run here).

    Both are verified even when the first fails; the run fails if either did, so it shows among failed
    maintenance runs as well as in the backups health.
    """
    chosen = backups_to_verify_weekly()
    if not chosen:
        return "No completed backup to verify."
    results = [_verified(backup) for backup in chosen]
    message = "; ".join(f"backup #{backup.pk} {outcome}" for backup, _, outcome in results)
    if not all(passed for _, passed, _ in results):
        raise services.BackupError(f"Verification failed: {message}")
    return f"Verified: {message}."


def _verified(backup) -> tuple:
    job = backup_job_run_here(BackupOperation.VERIFY, backup=backup)
    backup.refresh_from_db()
    if job.status != JobStatus.COMPLETED:
        return backup, False, f"failed: {job.error}"
    passed = backup.status == BackupStatus.VERIFIED
    return backup, passed, "passed" if passed else f"failed: {backup.error or 'no reason'}"


backup_create_nightly = maintenance_task("backup_create_nightly", backup_create_scheduled)
backup_verify_weekly = maintenance_task("backup_verify_weekly", backups_verify_scheduled)
backup_prune_daily = maintenance_task("backup_prune_daily", retention.backups_prune)
backups_staleness_check = maintenance_task("backups_staleness_check", staleness.backups_staleness_check)
