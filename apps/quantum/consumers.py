"""Live quantum job status: /ws/jobs/ (every job the user may see) and /ws/jobs/<id>/ (one job).

The message schema and close codes are documented in the README ("Live job updates").
"""

from __future__ import annotations

import time

from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model

from apps.core.choices import Role
from apps.core.consumers import (
    UNAUTHENTICATED_CLOSE_CODE,
    AuthenticatedConsumer,
    StreamRefused,
    job_snapshot_parts,
)
from apps.core.permissions import READ_ALL_ROLES, has_role
from apps.core.services import JOBS_ADMINS_GROUP, JOBS_ALL_GROUP, jobs_owner_group_name

from .choices import FINISHED_STATUSES, JobStatus
from .selectors import job_update_message, jobs_visible_to, queue_positions

# The user's roles changed while connected: reconnect to get the stream they now allow.
RIGHTS_CHANGED_CLOSE_CODE = 4403
# The job does not exist or is not the user's to see (the same answer for both, as in the API's 404).
JOB_NOT_VISIBLE_CLOSE_CODE = 4404
SNAPSHOT_RECENT_JOBS = 50
SNAPSHOT_MAX_UNFINISHED = 500
UNFINISHED_STATUSES = [status for status in JobStatus if status not in FINISHED_STATUSES]


def _update_messages(jobs: list) -> list[dict]:
    positions = queue_positions(jobs)
    return [job_update_message(job, queue_position=positions.get(job.id)) for job in jobs]


class JobStreamConsumer(AuthenticatedConsumer):
    """Base of the job streams: a snapshot first, then every ``job.update`` forwarded as published.

    Access is re-checked against the database at most every ``recheck_seconds``
    (not per event: one socket may carry thousands of events a minute).
    """

    recheck_seconds = 5.0

    async def groups_for(self, user) -> list[str]:
        return await database_sync_to_async(self.groups_of)(user)

    def groups_of(self, user) -> list[str]:
        """Everyone's jobs for administrators and viewers, one's own for everyone else; backups for administrators."""
        groups = [JOBS_ALL_GROUP] if has_role(user, *READ_ALL_ROLES) else [jobs_owner_group_name(user.pk)]
        return [*groups, JOBS_ADMINS_GROUP] if has_role(user, Role.ADMIN) else groups

    async def stream_opened(self, user) -> None:
        self.rights_checked_at = time.monotonic()
        self.closing = False
        snapshot = await database_sync_to_async(self.snapshot)(user)
        if snapshot is None:
            await self._close(JOB_NOT_VISIBLE_CLOSE_CODE)
        else:
            await self.send_json(snapshot)

    def snapshot(self, user) -> dict | None:
        raise NotImplementedError

    def forwards(self, message: dict) -> bool:
        return True

    async def dispatch(self, message: dict) -> None:
        # Channels hops to the one shared sync thread before every handler to close stale database
        # connections; an update reaches hundreds of sockets at once, so those hops queue up (and
        # behind request handling). This handler reaches the database only through
        # database_sync_to_async, which closes stale connections itself.
        if message["type"] == "job.updates":
            await self.job_updates(message)
        else:
            await super().dispatch(message)

    async def job_updates(self, message: dict) -> None:
        """``job.update`` messages published together by a service: each sent on unchanged, in order,
        while the user may still see them."""
        updates = [update for update in message["updates"] if self.forwards(update)]
        if self.closing or not updates:
            return
        if time.monotonic() - self.rights_checked_at >= self.recheck_seconds:
            self.rights_checked_at = time.monotonic()
            # Off the shared sync thread: hundreds of sockets re-checking at once must not queue
            # behind each other (or behind request handling) and delay their events.
            code = await database_sync_to_async(self.rights_lost, thread_sensitive=False)()
            if code is not None:
                await self._close(code)
                return
        for update in updates:
            await self.send(text_data=update["json"])

    def rights_lost(self) -> int | None:
        """The close code if the user may no longer be let in at all, or may no longer open this stream as
        joined; else None."""
        user = None if self.access_lost() else get_user_model().objects.filter(pk=self.scope["user"].pk).first()
        if user is None:
            return UNAUTHENTICATED_CLOSE_CODE
        try:
            groups = self.groups_of(user)
        except StreamRefused as refusal:
            return refusal.code
        return None if groups == list(self.joined_groups) else RIGHTS_CHANGED_CLOSE_CODE

    async def _close(self, code: int) -> None:
        # Events already queued for this channel still arrive until the client has gone.
        self.closing = True
        await self.close(code=code)


class JobsConsumer(JobStreamConsumer):
    """/ws/jobs/: the recent and unfinished jobs as a ``jobs.snapshot``, then each update the user may see."""

    def snapshot(self, user) -> dict:
        visible = jobs_visible_to(user).select_related("owner").order_by("-id")
        recent = list(visible[:SNAPSHOT_RECENT_JOBS])
        unfinished = visible.filter(status__in=UNFINISHED_STATUSES).exclude(id__in=[job.id for job in recent])
        jobs = sorted([*recent, *unfinished[:SNAPSHOT_MAX_UNFINISHED]], key=lambda job: job.id, reverse=True)
        # The same stream carries other kinds of job (inference): their recent and unfinished ones follow.
        return {"type": "jobs.snapshot", "jobs": _update_messages(jobs) + job_snapshot_parts(user)}


class JobConsumer(JobStreamConsumer):
    """/ws/jobs/<id>/: the job's current ``job.update``, then its updates only; others' jobs are refused."""

    async def connect(self) -> None:
        self.job_id = self.scope["url_route"]["kwargs"]["job_id"]
        await super().connect()

    def groups_of(self, user) -> list[str]:
        if not jobs_visible_to(user).filter(pk=self.job_id).exists():
            raise StreamRefused(JOB_NOT_VISIBLE_CLOSE_CODE)
        return super().groups_of(user)

    def snapshot(self, user) -> dict | None:
        job = jobs_visible_to(user).select_related("owner").filter(pk=self.job_id).first()
        return _update_messages([job])[0] if job else None

    def forwards(self, message: dict) -> bool:
        # Other kinds of job (inference) share the groups and may reuse the number.
        return message.get("kind") == "quantum" and message.get("id") == self.job_id
