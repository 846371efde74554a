"""The lifecycle every job goes through, whatever its kind: submit, claim, finish, cancel, requeue when lost.

Every transition is saved, audited, counted and published here, once; the kinds only run the work.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import connection, transaction
from django.db.models import DateTimeField
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.audit.choices import Outcome as AuditOutcome
from apps.audit.services import event_record
from apps.core.errors import ApplicationError
from apps.core.events import notify
from apps.core.queueing import enqueue_on_commit
from apps.readonly.services import (
    maintenance_held_jobs_exist,
    maintenance_held_jobs_take,
    maintenance_jobs_hold,
    maintenance_mode_current,
    maintenance_mode_status,
)

from . import metrics
from .choices import ACTIVE_STATUSES, FINISHED_STATUSES, JobStatus
from .kinds import JobKind, job_kinds
from .publishing import jobs_publish

logger = logging.getLogger(__name__)


class JobStateError(ApplicationError):
    """The job is not in a state that allows this action."""

    status = 409


@dataclass(frozen=True)
class Outcome:
    """How a run ended: the final status, a reason for users, and the kind's fields to store (results…)."""

    status: str
    error: str = ""
    fields: dict = field(default_factory=dict)


# --- Submit


def jobs_submitted(kind: JobKind, jobs: list, *, actor=None, changes=None, what: str = "", send: bool = True) -> None:
    """Audit newly created queued jobs and, once committed, publish them and put them on the broker.

    Call inside the transaction that created them. If the broker refuses the messages, the jobs still queued
    are failed and QueueUnavailable (503) reaches the caller. With ``send=False`` the caller runs them itself,
    in a task already on a worker (they are sent only if that worker is lost).
    """
    now = timezone.now()
    for job in jobs:
        job.queued_at = job.queued_at or now
    kind.model.objects.filter(pk__in=[job.pk for job in jobs], queued_at__isnull=True).update(queued_at=now)
    _audit(kind, jobs, "submitted", actor=actor, changes=changes or (lambda job: {}))
    # Announced before a worker can take them, so "queued" never arrives after "running".
    transaction.on_commit(lambda: jobs_publish(kind, jobs, with_positions=True))
    if not send:
        return
    what = what or ("the job" if len(jobs) == 1 else f"the {len(jobs)} jobs")
    refused = partial(jobs_not_queued, kind, [job.pk for job in jobs])
    enqueue_on_commit(lambda: kind.send(jobs), refused=refused, what=what)


def jobs_not_queued(kind: JobKind, job_ids: list[int], reason: str) -> None:
    """Fail the jobs still queued whose messages the broker refused: none waits for a run that never comes."""
    with transaction.atomic():
        queued = list(_locked(kind, job_ids).filter(status=JobStatus.QUEUED))
        failed = Outcome(JobStatus.FAILED, f"Not run: {reason}. Submit it again.")
        _finish_all(kind, dict.fromkeys([job.pk for job in queued], failed), queued)


# --- Claim and run


def jobs_claim(kind: JobKind, job_ids: Iterable[int], *, task_id: str, worker: str) -> list:
    """Mark the given queued jobs running for this task and worker; return them (highest priority first).

    A message delivered again after its worker process died finds its jobs active under its own task id: they
    run again, or fail once they have used their attempts; one being cancelled ends cancelled. Jobs another task
    holds, or that are finished, are left alone.

    While maintenance mode is on, queued jobs are not claimed but held: they stay queued, their message is done
    with, and jobs_release_held sends them again once maintenance ends.
    """
    now = timezone.now()
    paused = kind.waits_for_maintenance and maintenance_mode_current().active
    claimed, ended, again, held = [], {}, [], []
    with transaction.atomic():
        for job in _locked(kind, job_ids, skip_locked=True).order_by("-priority", "id"):
            redelivered = job.status in ACTIVE_STATUSES and job.celery_task_id == task_id
            if redelivered and job.status == JobStatus.CANCELLING:
                ended[job.pk] = Outcome(JobStatus.CANCELLED, "Cancelled; its worker stopped before it finished.")
            elif redelivered and job.attempts >= job.max_attempts:
                ended[job.pk] = Outcome(JobStatus.FAILED, _lost_too_often(job))
            elif paused and job.status == JobStatus.QUEUED:
                held.append(job.pk)
            elif job.status == JobStatus.QUEUED or redelivered:
                if redelivered:
                    again.append(job)
                job.status, job.started_at, job.heartbeat_at, job.finished_at = JobStatus.RUNNING, now, now, None
                job.attempts += 1
                job.worker, job.celery_task_id = worker[:200], task_id or ""
                job.progress_done, job.error, job.updated_at = 0, "", now
                claimed.append(job)
        fields = ["status", "started_at", "heartbeat_at", "finished_at", "attempts", "worker", "celery_task_id"]
        jobs_save(kind.model, claimed, [*fields, "progress_done", "error"])
        # The broker handed back the message of a lost worker (RabbitMQ does so as soon as the worker's connection
        # closes) before any sweeper requeued the job: the trail records the requeue all the same, as the sweeper's.
        _audit_requeued(kind, again, "the broker redelivered its message after its worker was lost", runs_before=1)
        claimed_ids = {job.pk for job in claimed}
        _finish_all(kind, ended, [job for job in _locked(kind, ended) if job.pk not in claimed_ids])
        if held:
            maintenance_jobs_hold(kind=kind.name, job_ids=held)
            logger.info("maintenance mode: %s %s jobs held until it ends", len(held), kind.name)
        transaction.on_commit(lambda: jobs_publish(kind, claimed))
    return claimed


def jobs_release_held() -> int:
    """Send again the queued jobs held while maintenance mode was on, once it is off; returns how many were sent.

    Called when maintenance is turned off (apps.readonly's hook) and by every worker's announcer, which also
    notices an end nobody typed (the switch's ``until`` or a window passing) and any job held after a release
    already ran. Jobs cancelled meanwhile are simply forgotten.
    """
    if not maintenance_held_jobs_exist() or maintenance_mode_status().active:
        return 0
    sent = 0
    for kind in job_kinds():
        with transaction.atomic():
            job_ids = maintenance_held_jobs_take(kind=kind.name)
            jobs = list(
                kind.model.objects.filter(pk__in=job_ids, status=JobStatus.QUEUED)
                .select_related(*kind.select_related)
                .order_by("-priority", "id")
            )
            if not jobs:
                continue
            refused = partial(jobs_not_queued, kind, [job.pk for job in jobs])
            enqueue_on_commit(partial(kind.send, jobs), refused=refused, what="the jobs held during maintenance")
            sent += len(jobs)
    return sent


def _lost_too_often(job) -> str:
    return (
        f"Its worker was lost during each of its {job.attempts} runs (at most {job.max_attempts} are allowed); "
        "not trying again. Look for workers stopped by a lack of memory or a restart."
    )


def jobs_finish(kind: JobKind, outcomes: dict[int, Outcome]) -> list:
    """Store how runs ended. A job being cancelled ends cancelled whatever the outcome; one no longer running
    (requeued after its worker was thought lost) is left as it is. Returns the jobs that were finished."""
    with transaction.atomic():
        return _finish_all(kind, outcomes, list(_locked(kind, outcomes)))


def _finish_all(kind: JobKind, outcomes: dict[int, Outcome], jobs: list, *, actor=None) -> list:
    """Finish locked jobs: save, audit per status (by ``actor``, if someone ended them), count and publish once
    committed."""
    now = timezone.now()
    finished, names = [], {"status", "error", "finished_at", "duration_seconds", "progress_done", "progress_total"}
    for job in jobs:
        outcome = outcomes.get(job.pk)
        if outcome is None or job.status in FINISHED_STATUSES:
            continue
        if job.status == JobStatus.CANCELLING:
            error = outcome.error if outcome.status == JobStatus.CANCELLED else "Cancelled while running."
            # The results of a run that went on to its end are not kept for a job cancelled meanwhile.
            fields = outcome.fields if outcome.status == JobStatus.CANCELLED else {}
            outcome = Outcome(JobStatus.CANCELLED, error or "Cancelled while running.", fields)
        elif job.status == JobStatus.RUNNING and outcome.status == JobStatus.CANCELLED:
            continue  # a run stopped for another job's cancellation; the caller runs it again
        for name, value in outcome.fields.items():
            setattr(job, name, value)
            names.add(name)
        job.status, job.error, job.finished_at, job.updated_at = outcome.status, outcome.error, now, now
        if job.started_at and job.duration_seconds is None:
            job.duration_seconds = round((now - job.started_at).total_seconds(), 6)
        finished.append(job)
    jobs_save(kind.model, finished, sorted(names))
    for status in FINISHED_STATUSES:
        ended = [job for job in finished if job.status == status]
        outcome = AuditOutcome.FAILURE if status == JobStatus.FAILED else AuditOutcome.SUCCESS
        if actor is None and kind.ended_for_owner:
            for job in ended:
                _audit(kind, [job], status, actor=job.owner, outcome=outcome, changes=kind.changes)
        else:
            _audit(kind, ended, status, actor=actor, outcome=outcome, changes=kind.changes)
    for job in finished:
        metrics.JOBS_FINISHED.labels(kind=kind.name, status=job.status).inc()
        if kind.on_finished is not None:
            kind.on_finished(job)
        if job.status in NOTIFIED_STATUSES:
            _notify_finished(kind, job)
    transaction.on_commit(lambda: jobs_publish(kind, finished))
    return finished


NOTIFIED_STATUSES = {JobStatus.COMPLETED: "job.completed", JobStatus.FAILED: "job.failed"}


def _notify_finished(kind: JobKind, job) -> None:
    data = {"kind": kind.name, "job_id": job.pk, "name": str(job), "status": job.status}
    if job.error:
        data["error"] = job.error
    if kind.page is not None:
        data["path"] = kind.page(job)
    outcome = "completed" if job.status == JobStatus.COMPLETED else f"failed: {job.error}"
    notify(NOTIFIED_STATUSES[job.status], data=data, user=job.owner, obj=job, summary=f"{job} {outcome}")


def job_heartbeat(kind: JobKind, job_ids: list[int], *, task_id: str) -> None:
    """Record that this task's worker still runs the jobs."""
    kind.model.objects.filter(pk__in=job_ids, celery_task_id=task_id, status__in=ACTIVE_STATUSES).update(
        heartbeat_at=timezone.now()
    )


def jobs_cancelling(kind: JobKind, job_ids: list[int]) -> set[int]:
    """Which of these jobs someone asked to cancel."""
    return set(kind.model.objects.filter(pk__in=job_ids, status=JobStatus.CANCELLING).values_list("pk", flat=True))


# --- Cancel


def job_cancel(kind: JobKind, job, *, actor):
    """Cancel a queued job at once; ask the worker to stop a running one (it reaches cancelled within 2 s).

    Permission is the caller's to check. Raises JobStateError (409) for a finished job.
    """
    with transaction.atomic():
        job = _locked(kind, [job.pk]).get()
        if job.status in FINISHED_STATUSES:
            raise JobStateError(f"Job #{job.pk} is already {job.status}; there is nothing to cancel.")
        if job.status == JobStatus.CANCELLING:
            return job
        if job.status == JobStatus.QUEUED:
            reason = f"Cancelled by {actor.get_username()} before it ran."
            _finish_all(kind, {job.pk: Outcome(JobStatus.CANCELLED, reason)}, [job], actor=actor)
            return job
        job.status, job.updated_at = JobStatus.CANCELLING, timezone.now()
        jobs_save(kind.model, [job], ["status"])
        event_record(
            action=kind.audit_action("cancelled"),
            actor=actor,
            obj=job,
            changes={"status": [JobStatus.RUNNING, JobStatus.CANCELLING]},
        )
        transaction.on_commit(lambda: jobs_publish(kind, [job]))
    return job


# --- Lost workers (swept by every worker, see sweeper.py)


def jobs_requeue_lost(*, now=None) -> dict[str, int]:
    """Requeue the active jobs whose worker stopped heartbeating for JOBS_HEARTBEAT_TIMEOUT seconds.

    Each runs again on whichever worker takes it, with ``attempts`` counting the lost run; one that used all its
    attempts fails saying why, and one being cancelled ends cancelled. Returns how many of each kind moved.
    """
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.JOBS_HEARTBEAT_TIMEOUT)
    moved = {}
    for kind in job_kinds():
        with transaction.atomic():
            lost = list(
                _locked(kind, None, skip_locked=True)
                .annotate(last_sign=Coalesce("heartbeat_at", "started_at", output_field=DateTimeField()))
                .filter(status__in=ACTIVE_STATUSES, last_sign__lt=cutoff)
            )
            ended, again = {}, []
            for job in lost:
                if job.status == JobStatus.CANCELLING:
                    ended[job.pk] = Outcome(JobStatus.CANCELLED, "Cancelled; its worker stopped answering.")
                elif job.attempts >= job.max_attempts:
                    ended[job.pk] = Outcome(JobStatus.FAILED, _lost_too_often(job))
                else:
                    again.append(job)
            _finish_all(kind, ended, lost)
            _requeue(kind, again)
        if lost:
            moved[kind.name] = len(lost)
    return moved


def _requeue(kind: JobKind, jobs: list) -> None:
    if not jobs:
        return
    now = timezone.now()
    for job in jobs:
        job.status, job.queued_at, job.updated_at = JobStatus.QUEUED, now, now
        job.worker, job.celery_task_id, job.started_at, job.heartbeat_at = "", "", None, None
    jobs_save(kind.model, jobs, ["status", "queued_at", "worker", "celery_task_id", "started_at", "heartbeat_at"])
    _audit_requeued(kind, jobs, "its worker stopped heartbeating")
    transaction.on_commit(lambda: jobs_publish(kind, jobs, with_positions=True))
    enqueue_on_commit(
        lambda: kind.send(jobs), refused=partial(jobs_not_queued, kind, [job.pk for job in jobs]), what="lost jobs"
    )


def _audit_requeued(kind: JobKind, jobs: list, reason: str, *, runs_before: int = 0) -> None:
    """Audit and count jobs of a lost worker that run again; ``attempts`` is the number of runs lost so far
    (``runs_before`` is subtracted from jobs whose new run was already counted)."""
    if not jobs:
        return
    _audit(
        kind,
        jobs,
        "requeued",
        outcome=AuditOutcome.FAILURE,
        changes=lambda job: {"attempts": job.attempts - runs_before, "reason": reason},
    )
    metrics.JOBS_REQUEUED.labels(kind=kind.name).inc(len(jobs))


# --- Saving, locking, auditing


def _locked(kind: JobKind, job_ids, *, skip_locked: bool = False):
    jobs = kind.model.objects.select_for_update(skip_locked=skip_locked, of=("self",)).select_related(
        *kind.select_related
    )
    return jobs if job_ids is None else jobs.filter(pk__in=list(job_ids))


def jobs_save(model, jobs: list, field_names: Iterable[str]) -> None:
    """Write these fields (and updated_at) of each job: one UPDATE per row, sent together.

    bulk_update builds a CASE expression per field and row, and resolving those costs more than the database
    work for a batch of small jobs.
    """
    if not jobs:
        return
    fields = [model._meta.get_field(name) for name in [*dict.fromkeys(field_names), "updated_at"]]
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    sql = f"UPDATE {quote(model._meta.db_table)} SET {assignments} WHERE id = %s"  # noqa: S608
    rows = [
        [*(field.get_db_prep_save(getattr(job, field.attname), connection) for field in fields), job.pk] for job in jobs
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def _audit(kind: JobKind, jobs: list, event: str, *, actor=None, outcome=AuditOutcome.SUCCESS, changes) -> None:
    """One audit event per job, or for many jobs at once one event listing them (ids and details)."""
    action = kind.audit_action(event)
    if len(jobs) == 1:
        event_record(action=action, actor=actor, obj=jobs[0], changes=changes(jobs[0]), outcome=outcome)
    elif jobs:
        event_record(
            action=action,
            actor=actor,
            object_type=kind.label,
            object_id=f"{jobs[0].pk}…{jobs[-1].pk}",
            object_repr=f"{len(jobs)} jobs",
            changes={"jobs": {str(job.pk): changes(job) for job in jobs}},
            outcome=outcome,
        )
