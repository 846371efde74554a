"""Live job status for every kind: /ws/jobs/ (every job the user may see), /ws/jobs/<kind>/<id>/ (one job) and
/ws/jobs/<id>/ (one quantum job, the first stream's address).

Each kind registered in ``kinds`` takes part; the message schema and close codes are in the README
("Live job updates").
"""

from __future__ import annotations

import asyncio
import time

from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model

from apps.core.choices import Role
from apps.core.consumers import UNAUTHENTICATED_CLOSE_CODE, AuthenticatedConsumer, StreamRefused
from apps.core.permissions import READ_ALL_ROLES, has_role

from .choices import UNFINISHED_STATUSES
from .kinds import job_kind, job_kinds
from .publishing import JOBS_ADMINS_GROUP, JOBS_ALL_GROUP, job_update_messages, jobs_owner_group_name

# The user's roles changed while connected: reconnect to get the stream they now allow.
RIGHTS_CHANGED_CLOSE_CODE = 4403
# The job does not exist or is not the user's to see (the same answer for both, as in the API's 404).
JOB_NOT_VISIBLE_CLOSE_CODE = 4404
SNAPSHOT_RECENT_JOBS = 50
SNAPSHOT_MAX_UNFINISHED = 500


def jobs_snapshot(kind, user) -> list[dict]:
    """Update messages of the user's recent jobs of one kind and every unfinished one, newest first."""
    visible = kind.visible_to(user).select_related(*kind.select_related).order_by("-id")
    recent = list(visible[:SNAPSHOT_RECENT_JOBS])
    unfinished = visible.filter(status__in=UNFINISHED_STATUSES).exclude(id__in=[job.pk for job in recent])
    jobs = sorted([*recent, *unfinished[:SNAPSHOT_MAX_UNFINISHED]], key=lambda job: job.pk, reverse=True)
    return job_update_messages(kind, jobs)


class SharedSnapshots:
    """Sockets of one user opening together (a dashboard's tabs, a fleet of watchers) share one snapshot.

    A snapshot is shared only with sockets that had joined their groups before it was started, so none of them
    misses an event that happened in between: each socket's snapshot is as new as its subscription, as if it
    had queried alone. Per event loop, as the sockets of one process are.
    """

    # Entries older than this are dropped when a new one is added (none can serve a socket opening later).
    FORGET_AFTER_SECONDS = 10.0

    def __init__(self):
        self.started: dict[tuple, tuple[float, asyncio.Future]] = {}

    async def shared(self, key: tuple, joined_at: float, compute) -> str | None:
        key = (id(asyncio.get_running_loop()), *key)
        entry = self.started.get(key)
        if entry is None or entry[0] < joined_at:
            self._forget_old()
            entry = self.started[key] = (time.monotonic(), asyncio.ensure_future(compute()))
        # One socket closing while it waits must not cancel the others' snapshot.
        return await asyncio.shield(entry[1])

    def _forget_old(self) -> None:
        cutoff = time.monotonic() - self.FORGET_AFTER_SECONDS
        for key in [key for key, (started_at, _) in self.started.items() if started_at < cutoff]:
            del self.started[key]


SNAPSHOTS = SharedSnapshots()


class JobStreamConsumer(AuthenticatedConsumer):
    """Base of the job streams: a snapshot first, then every ``job.update`` forwarded as published.

    Access is re-checked against the database at most every ``recheck_seconds`` (not per event: one socket may
    carry thousands of events a minute).
    """

    recheck_seconds = 5.0

    async def groups_for(self, user) -> list[str]:
        return await database_sync_to_async(self.groups_of)(user)

    def groups_of(self, user) -> list[str]:
        """Everyone's jobs for administrators and viewers, one's own for everyone else; the portal's own work
        (backups, everyone's reports) for administrators."""
        groups = [JOBS_ALL_GROUP] if has_role(user, *READ_ALL_ROLES) else [jobs_owner_group_name(user.pk)]
        return [*groups, JOBS_ADMINS_GROUP] if has_role(user, Role.ADMIN) else groups

    async def stream_opened(self, user) -> None:
        joined_at = self.rights_checked_at = time.monotonic()
        self.closing = False
        snapshot = await SNAPSHOTS.shared(self.snapshot_key(user), joined_at, lambda: self.encoded_snapshot(user))
        if snapshot is None:
            await self._close(JOB_NOT_VISIBLE_CLOSE_CODE)
        else:
            await self.send(text_data=snapshot)

    def snapshot_key(self, user) -> tuple:
        """Sockets with the same key get the same snapshot."""
        return (type(self), user.pk, self.scope["path"])

    async def encoded_snapshot(self, user) -> str | None:
        snapshot = await database_sync_to_async(self.snapshot)(user)
        return None if snapshot is None else await self.encode_json(snapshot)

    def snapshot(self, user) -> dict | None:
        raise NotImplementedError

    def forwards(self, message: dict) -> bool:
        return True

    async def dispatch(self, message: dict) -> None:
        # Channels hops to the one shared sync thread before every handler to close stale database connections;
        # an update reaches hundreds of sockets at once, so those hops queue up (and behind request handling).
        # This handler reaches the database only through database_sync_to_async, which closes stale connections.
        if message["type"] == "job.updates":
            await self.job_updates(message)
        else:
            await super().dispatch(message)

    async def job_updates(self, message: dict) -> None:
        """``job.update`` messages published together: each sent on unchanged, in order, while the user may
        still see them."""
        updates = [update for update in message["updates"] if self.forwards(update)]
        if self.closing or not updates:
            return
        if time.monotonic() - self.rights_checked_at >= self.recheck_seconds:
            self.rights_checked_at = time.monotonic()
            # Off the shared sync thread: hundreds of sockets re-checking at once must not queue behind each
            # other (or behind request handling) and delay their events.
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
    """/ws/jobs/: each kind's recent and unfinished jobs as one ``jobs.snapshot``, then each update."""

    def snapshot(self, user) -> dict:
        return {"type": "jobs.snapshot", "jobs": [m for kind in job_kinds() for m in jobs_snapshot(kind, user)]}


class JobConsumer(JobStreamConsumer):
    """/ws/jobs/<kind>/<id>/: the job's current ``job.update``, then its updates only; others' jobs are refused.

    /ws/jobs/<id>/ is the same for a quantum job.
    """

    async def connect(self) -> None:
        kwargs = self.scope["url_route"]["kwargs"]
        self.kind_name, self.job_id = kwargs.get("kind", "quantum"), kwargs["job_id"]
        await super().connect()

    def _visible(self, user):
        try:
            kind = job_kind(self.kind_name)
        except KeyError:
            raise StreamRefused(JOB_NOT_VISIBLE_CLOSE_CODE) from None
        return kind, kind.visible_to(user).select_related(*kind.select_related).filter(pk=self.job_id)

    def groups_of(self, user) -> list[str]:
        if not self._visible(user)[1].exists():
            raise StreamRefused(JOB_NOT_VISIBLE_CLOSE_CODE)
        return super().groups_of(user)

    def snapshot(self, user) -> dict | None:
        kind, jobs = self._visible(user)
        job = jobs.first()
        return job_update_messages(kind, [job])[0] if job else None

    def forwards(self, message: dict) -> bool:
        return message.get("kind") == self.kind_name and message.get("id") == self.job_id
