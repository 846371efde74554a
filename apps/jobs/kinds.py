"""The registry of job kinds: what the job layer needs to know of each app's jobs.

Each app registers its kind from ``AppConfig.ready``; the layer (lifecycle, stream, sweeper) then treats every
kind alike and never imports the apps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import QuerySet

# Who receives a kind's live updates besides its owner: everyone who may watch all jobs, or administrators only.
EVERYONE = "everyone"
ADMINISTRATORS = "administrators"


def _no_details(job) -> dict:
    return {}


def _status_changes(job) -> dict:
    return {"status": job.status, "error": job.error} if job.error else {"status": job.status}


@dataclass(frozen=True)
class JobKind:
    """One kind of job. ``name`` is the ``kind`` of its stream messages."""

    name: str
    model: type
    # Audit actions are "<audit_prefix>.<event>" (submitted, completed, failed, cancelled, requeued) unless
    # ``audit_actions`` names another for an event.
    audit_prefix: str
    # Puts messages for these queued jobs on the broker (a job may be sent again after its worker was lost).
    send: Callable[[list], None]
    # The jobs of this kind a user may see: the stream's snapshot and the single-job stream use it.
    visible_to: Callable[[Any], QuerySet]
    audience: str = EVERYONE
    # The kind's own fields of a stream message (name, progress details…), merged over the common ones.
    details: Callable[[Any], dict] = _no_details
    # What an audit event of a finished job records.
    changes: Callable[[Any], dict] = _status_changes
    # Called once per job that reaches a final status (the kind's own metrics).
    on_finished: Callable[[Any], None] | None = None
    # 1-based places in the queue of the queued jobs given, by id (kinds without a visible queue: none).
    queue_positions: Callable[[list], dict[int, int]] | None = None
    # Called after the kind's updates were published (gauges of the queue, say).
    on_published: Callable[[list], None] | None = None
    select_related: tuple[str, ...] = ("owner",)
    # The audit events of a job's end name its owner as the actor (work done on their behalf, like a report they
    # asked for), rather than no one (the portal's own doing).
    ended_for_owner: bool = False
    audit_actions: dict[str, str] = field(default_factory=dict)
    # Sends the queued jobs that waited for a worker able to take them; returns how many (called by every worker
    # when it starts and whenever it announces itself, apps/jobs/workers.py).
    send_waiting: Callable[[], int] | None = None
    # The portal page that shows one job (a path), for links in notifications.
    page: Callable[[Any], str] | None = None
    # Whether workers hold the kind's queued jobs while maintenance mode is on (apps.readonly); False for the
    # housekeeping that goes on during maintenance (backups run on the maintenance queue, scheduled ones included).
    waits_for_maintenance: bool = True

    def audit_action(self, event: str) -> str:
        return self.audit_actions.get(event, f"{self.audit_prefix}.{event}")

    @property
    def label(self) -> str:
        return self.model._meta.label_lower


_kinds: dict[str, JobKind] = {}


def job_kind_register(kind: JobKind) -> None:
    _kinds[kind.name] = kind


def job_kind(name: str) -> JobKind:
    return _kinds[name]


def job_kind_of(job) -> JobKind:
    for kind in _kinds.values():
        if isinstance(job, kind.model):
            return kind
    raise LookupError(f"No job kind is registered for {type(job).__name__}.")


def job_kinds() -> list[JobKind]:
    """Every registered kind, in registration order."""
    return list(_kinds.values())
