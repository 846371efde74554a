"""Live ``job.update`` messages: one schema for every kind, one publisher.

Groups: one per owner, one for the roles that see everyone's jobs, one for administrators (the portal's own
work, reports). A failure to publish is logged and never undoes a change: clients re-sync on reconnect.
"""

from __future__ import annotations

import json
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils import timezone

from apps.core import formatting

from .kinds import EVERYONE, JobKind

logger = logging.getLogger(__name__)

JOBS_ALL_GROUP = "jobs.all"
JOBS_ADMINS_GROUP = "jobs.admins"


def jobs_owner_group_name(owner_id: int) -> str:
    """The channel-layer group that carries job updates for one owner."""
    return f"jobs.owner.{owner_id}"


def job_update_message(kind: JobKind, job, *, queue_position: int | None = None) -> dict:
    """The ``job.update`` message of a job (README: "Live job updates"); load ``owner`` with the job."""
    owner = job.owner
    message = {
        "type": "job.update",
        "kind": kind.name,
        "id": job.pk,
        "name": getattr(job, "name", "") or "",
        "owner": owner.get_username() if owner is not None else "",
        "status": job.status,
        "updated_at": (job.updated_at or timezone.now()).isoformat(),
        "queue_position": queue_position,
        "attempts": job.attempts,
        "error": job.error or None,
        "progress": {"done": job.progress_done, "total": job.progress_total},
    }
    details = kind.details(job)
    if "progress" in details:
        details["progress"] = {**message["progress"], **details["progress"]}
    return message | details


def job_update_messages(kind: JobKind, jobs: list, *, with_positions: bool = True) -> list[dict]:
    positions = kind.queue_positions(jobs) if with_positions and kind.queue_positions else {}
    return [job_update_message(kind, job, queue_position=positions.get(job.pk)) for job in jobs]


def jobs_publish(kind: JobKind, jobs: list, *, with_positions: bool = False) -> None:
    """Send the jobs' updates to their owners' streams and to the kind's wider audience."""
    if not jobs:
        return
    messages = job_update_messages(kind, jobs, with_positions=with_positions)
    stream_publish(
        [((job.owner_id,), message) for job, message in zip(jobs, messages, strict=True)],
        audience=kind.audience,
        what=f"{kind.name} job",
    )
    if kind.on_published is not None:
        kind.on_published(jobs)


def stream_publish(messages: list[tuple[tuple, dict]], *, audience: str, what: str) -> None:
    """Send each message (``kind`` and ``id`` set) to the streams of its owners' ids and to the ``audience``'s
    wider group; ``what`` names the messages in the log should publishing fail."""
    by_group: dict[str, list[dict]] = {}
    wider = []
    for owner_ids, message in messages:
        update = {"kind": message["kind"], "id": message["id"], "json": json.dumps(message)}
        for owner_id in dict.fromkeys(owner_id for owner_id in owner_ids if owner_id is not None):
            by_group.setdefault(jobs_owner_group_name(owner_id), []).append(update)
        wider.append(update)
    by_group[JOBS_ALL_GROUP if audience == EVERYONE else JOBS_ADMINS_GROUP] = wider
    try:
        async_to_sync(_send)(list(by_group.items()))
    except Exception:
        logger.exception("could not publish %s of %s", formatting.count(len(messages), "update"), what)


async def _send(messages: list[tuple[str, list[dict]]]) -> None:
    layer = get_channel_layer()
    for group, updates in messages:
        await layer.group_send(group, {"type": "job.updates", "updates": updates})
