"""What staff do from the workers and queues view: drain a worker, cancel any job. Every door (page, API) calls
these; each checks who may, and audits what was done."""

from __future__ import annotations

import logging

from celery import current_app
from django.db import transaction
from django.utils import timezone

from apps.audit.choices import Outcome
from apps.audit.services import event_record
from apps.core.choices import Role
from apps.core.errors import ApplicationError, NotPermitted
from apps.core.permissions import has_role

from . import lifecycle
from .kinds import job_kinds
from .models import WorkerPresence
from .selectors import worker_live

logger = logging.getLogger(__name__)

# How long a drained worker has to confirm each queue it stops taking (Celery's control replies).
DRAIN_REPLY_SECONDS = 3.0
WORKER_HOSTNAME_MAX = 200


class WorkerError(ApplicationError):
    """A worker action that cannot be done (no such live worker, no reply)."""


def _require_admin(actor, what: str) -> None:
    if not (actor.is_staff and has_role(actor, Role.ADMIN)):
        raise NotPermitted(f"Only staff administrators may {what}.")


def worker_drain(*, hostname: str, actor) -> WorkerPresence:
    """Have a live worker finish what it runs and take nothing more: Celery's ``cancel_consumer`` for each of its
    queues, sent to that worker alone. Marks it draining and audits ``jobs.worker.drained``.

    Draining a worker that already drains changes nothing. Raises WorkerError: 404 for a worker not live, 503
    when it does not confirm within DRAIN_REPLY_SECONDS (it may be stopping; nothing is marked).
    """
    _require_admin(actor, "drain a worker")
    if not hostname or len(hostname) > WORKER_HOSTNAME_MAX:
        raise WorkerError(f"Name a worker by its hostname (1 to {WORKER_HOSTNAME_MAX} characters).", field="hostname")
    presence = worker_live(hostname)
    if presence is None:
        raise WorkerError(f"No live worker is named {hostname!r}.", status=404, code="not_found")
    if presence.is_draining:
        return presence
    queues = list(presence.queues)
    unconfirmed = []
    for queue in queues:
        replies = current_app.control.cancel_consumer(
            queue, destination=[hostname], reply=True, timeout=DRAIN_REPLY_SECONDS, limit=1
        )
        if not any(hostname in reply for reply in replies or []):
            unconfirmed.append(queue)
    if unconfirmed and len(unconfirmed) == len(queues):
        _drain_audit(hostname, actor, queues, unconfirmed, outcome=Outcome.FAILURE)
        raise WorkerError(
            f"Worker {hostname} did not confirm the drain within {DRAIN_REPLY_SECONDS:g} s; it may be stopping. "
            "Look again in a few seconds and retry.",
            status=503,
            code="unavailable",
        )
    with transaction.atomic():
        presence = WorkerPresence.objects.select_for_update().get(pk=presence.pk)
        presence.draining_since = timezone.now()
        presence.drained_queues = queues
        # It takes from none of them any more: routers stop counting on it before its next announcement.
        presence.queues = []
        presence.save(update_fields=["draining_since", "drained_queues", "queues"])
        _drain_audit(hostname, actor, queues, unconfirmed)
    logger.info("worker %s drained by %s (queues %s)", hostname, actor.get_username(), ", ".join(queues))
    return presence


def _drain_audit(hostname: str, actor, queues: list[str], unconfirmed: list[str], *, outcome=Outcome.SUCCESS) -> None:
    changes = {"queues": queues, **({"unconfirmed": unconfirmed} if unconfirmed else {})}
    event_record(
        action="jobs.worker.drained",
        actor=actor,
        object_type="jobs.workerpresence",
        object_id=hostname,
        object_repr=hostname,
        changes=changes,
        outcome=outcome,
    )


def staff_job_cancel(*, kind_name: str, job_id: int, actor):
    """Cancel any job of any kind from the workers view, through the job layer's one cancel service (audited
    there as ``<kind>.cancelled`` by ``actor``). Raises WorkerError 404 for an unknown kind or job, and
    lifecycle.JobStateError (409) for a finished one."""
    _require_admin(actor, "cancel jobs from the workers view")
    kinds = {kind.name: kind for kind in job_kinds()}
    kind = kinds.get(kind_name)
    if kind is None:
        raise WorkerError(
            f"Unknown job kind {kind_name!r}; the kinds are {', '.join(sorted(kinds))}.", status=404, code="not_found"
        )
    job = kind.model.objects.filter(pk=job_id).first()
    if job is None:
        raise WorkerError(f"No {kind_name} job #{job_id}.", status=404, code="not_found")
    return lifecycle.job_cancel(kind, job, actor=actor)
