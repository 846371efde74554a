"""Backup jobs: creating, verifying and restoring a backup on a worker (the maintenance queue), with live progress.

The job layer (apps.jobs) owns the lifecycle (queue, claim, heartbeat, cancel, finish, audit, stream); this module
asks for backup jobs and runs them. The job has the lifecycle; the backup the result (completed, verified,
verify_failed…). A create job can be cancelled until it ends (pg_dump is killed); a verify job only until the
scratch restore starts; a restore job only until pg_restore starts (after its safety backup), and it runs once:
a restore whose worker was lost is failed, never started again behind the administrator's back.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from functools import partial

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.audit.services import events_record
from apps.core.choices import Role
from apps.core.permissions import has_role
from apps.jobs.choices import JobStatus
from apps.jobs.kinds import job_kind
from apps.jobs.lifecycle import JobStateError, Outcome, job_cancel, jobs_claim, jobs_finish, jobs_submitted
from apps.jobs.running import JobRun

from .choices import BackupOperation, BackupStatus, BackupTrigger
from .models import Backup, BackupJob
from .restore import backup_restore, backup_verify, restore_refusal_check, verifiable_key
from .services import BackupError, BackupWatcher, backup_create, backup_failed, configured_key

logger = logging.getLogger(__name__)

KIND = "backup"


class BackupCancelled(BackupError):
    """The job was cancelled; the backup was left failed (create) or as it was (verify)."""


# --- What the job layer needs to know (registered in BackupsConfig.ready)


def backup_jobs_visible_to(user):
    """Backups are the administrators' business: they see every backup job, nobody else sees any."""
    return BackupJob.objects.all() if has_role(user, Role.ADMIN) else BackupJob.objects.none()


def backup_job_details(job: BackupJob) -> dict:
    """The backup fields of a job's stream message: what it does, to which backup, how many bytes it wrote."""
    return {"operation": job.operation, "backup": job.backup_id, "progress": {"bytes_written": job.progress_done}}


def backup_job_changes(job: BackupJob) -> dict:
    changes = {"operation": job.operation, "backup": job.backup_id, "status": job.status}
    return {**changes, "error": job.error} if job.error else changes


# --- Asking for jobs


def backup_job_request(operation: str, actor, backup: Backup | None = None) -> BackupJob:
    """Queue a job that creates a backup, or verifies ``backup``; ``actor`` (an administrator, or None for the
    schedule) owns it.

    Refused with BackupError (409) before anything is queued when it could not run: no key configured, or a
    backup without a stored file to verify. A broker that refuses the message fails the job and raises
    QueueUnavailable (503).
    """
    if operation == BackupOperation.CREATE:
        configured_key()
    elif operation == BackupOperation.VERIFY:
        verifiable_key(backup)
    elif operation == BackupOperation.RESTORE:
        restore_refusal_check(backup)
    else:
        raise BackupError(f"Backup jobs create, verify or restore; {operation!r} is not one of them.")
    owner = actor if getattr(actor, "is_authenticated", False) else None
    max_attempts = 1 if operation == BackupOperation.RESTORE else BackupJob._meta.get_field("max_attempts").default
    with transaction.atomic():
        job = BackupJob.objects.create(operation=operation, backup=backup, owner=owner, max_attempts=max_attempts)
        jobs_submitted(
            job_kind(KIND),
            [job],
            actor=owner,
            changes=backup_job_changes,
            what=f"backup job #{job.pk} ({job.name.lower()})",
        )
    return job


def backup_job_run_here(operation: str, *, backup: Backup | None = None) -> BackupJob:
    """Make a job of the schedule's and run it at once in this process (a maintenance task, on a worker already).

    It is a job like any other (its row, audit, live progress, heartbeat): if this worker is lost, the sweeper
    puts it on the queue for another worker. Returns the job as it ended.
    """
    with transaction.atomic():
        job = BackupJob.objects.create(operation=operation, backup=backup, owner=None)
        jobs_submitted(job_kind(KIND), [job], changes=backup_job_changes, send=False)
    worker = f"{socket.gethostname()} pid {os.getpid()}"
    backup_job_run(job.pk, task_id=f"schedule-{uuid.uuid4().hex}", worker=worker)
    job.refresh_from_db()
    return job


def backup_job_cancel(job: BackupJob, *, actor) -> BackupJob:
    """Cancel a queued job at once, or stop a running one; refused (409) once a verification's restore started."""
    with transaction.atomic():
        job = BackupJob.objects.select_for_update().get(pk=job.pk)
        if job.status == JobStatus.RUNNING and not job.cancellable:
            raise JobStateError(
                f"Backup job #{job.pk} has started restoring the backup into a scratch database: it can no longer "
                "be cancelled and ends by itself."
            )
        return job_cancel(job_kind(KIND), job, actor=actor)


# --- Running them (the backups.run_job task)


def backup_job_run(job_id: int, *, task_id: str, worker: str) -> None:
    """Claim the job, run it while its worker heartbeats it, and record how it ended."""
    kind = job_kind(KIND)
    for job in jobs_claim(kind, [job_id], task_id=task_id, worker=worker):
        with JobRun(kind, [job], task_id=task_id) as run:
            outcome = _outcome(job, run)
        jobs_finish(kind, {job.pk: outcome})


def _outcome(job: BackupJob, run: JobRun) -> Outcome:
    if not job.cancellable:  # set by an earlier run whose worker was lost
        BackupJob.objects.filter(pk=job.pk).update(cancellable=True)
    try:
        RUNNERS[job.operation](job, run)
    except BackupCancelled as exc:
        return Outcome(JobStatus.CANCELLED, str(exc))
    except BackupError as exc:
        return Outcome(JobStatus.FAILED, str(exc))
    except Exception as exc:
        logger.exception("backup job #%s failed", job.pk)
        return Outcome(JobStatus.FAILED, f"{type(exc).__name__}: {exc}")
    return Outcome(JobStatus.COMPLETED, fields={"progress_done": job.progress_done})


class _JobWatcher(BackupWatcher):
    """Links the new backup to its job, streams the bytes written, and kills pg_dump when the job is cancelled."""

    def __init__(self, job: BackupJob, run: JobRun):
        self.job, self.run = job, run

    def started(self, backup: Backup) -> None:
        self.job.backup = backup
        BackupJob.objects.filter(pk=self.job.pk).update(backup=backup, updated_at=timezone.now())
        self.run.progress(self.job, 0, force=True)

    def dumping(self, stop) -> None:
        self.run.on_cancel(stop)

    def written(self, backup: Backup, size: int) -> None:
        if self.run.cancel_requested.is_set():
            raise BackupCancelled("Cancelled while the backup was being written.")
        self.run.progress(self.job, size)


def _create(job: BackupJob, run: JobRun) -> None:
    abandoned = job.backup
    if abandoned is not None and abandoned.status == BackupStatus.RUNNING:
        backup_failed(abandoned, "Its worker was lost while writing it; the job ran again.", actor=job.owner)
    trigger = BackupTrigger.USER if job.owner_id else BackupTrigger.SCHEDULE
    backup = backup_create(trigger=trigger, actor=job.owner, watcher=_JobWatcher(job, run))
    job.progress_done = backup.size_bytes


def _restore_starting(job: BackupJob, *, into: str) -> None:
    """From here on the job cannot be cancelled; if it already is being cancelled, it stops here."""
    if not BackupJob.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(
        cancellable=False, updated_at=timezone.now()
    ):
        raise BackupCancelled(f"Cancelled before its restore into {into} started; the database is unchanged.")


def _verify(job: BackupJob, run: JobRun) -> None:
    if job.backup is None:
        raise BackupError("The backup to verify no longer exists.")
    starting = partial(_restore_starting, job, into="a scratch database")
    backup_verify(backup=job.backup, actor=job.owner, restore_starting=starting)


def _restore(job: BackupJob, run: JobRun) -> None:
    """Replace the database with the backup. The job's own audit events, written before the restore, are lost
    with the rest of the trail it replaces: they are recorded again afterwards, saying when they first were."""
    if job.backup is None:
        raise BackupError("The backup to restore no longer exists.")
    label = BackupJob._meta.label_lower
    before = list(AuditEvent.objects.filter(object_type=label, object_id=str(job.pk)).order_by("id"))
    starting = partial(_restore_starting, job, into="the live database")
    backup_restore(backup=job.backup, actor=job.owner, restore_starting=starting, while_restoring=run.paused)
    recorded = set(AuditEvent.objects.filter(object_type=label, object_id=str(job.pk)).values_list("hash", flat=True))
    events_record(
        [
            {
                "action": event.action,
                "actor": get_user_model().objects.filter(pk=event.actor_id).first(),
                "obj": job,
                "outcome": event.outcome,
                "changes": {**event.changes, "recorded_before_the_restore_at": event.timestamp.isoformat()},
            }
            for event in before
            if event.hash not in recorded
        ]
    )


RUNNERS = {BackupOperation.CREATE: _create, BackupOperation.VERIFY: _verify, BackupOperation.RESTORE: _restore}
