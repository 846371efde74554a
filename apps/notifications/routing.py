"""Who might be told of the frequent events (one per finished job), known without a query per event.

A job's end is announced once per job, inside the transaction that finishes a batch of jobs; asking every channel
per job cost the workers half their throughput. A snapshot of each frequent event's possible audience, refreshed
every few seconds, answers "nobody" without a query; when it says "maybe", the channels are asked as for any event.
Changes saved in this process clear it at once; other processes see them within REFRESH_SECONDS.
"""

from __future__ import annotations

import time

from apps.core.events import EventType

from .channels import CHANNELS, Audience

REFRESH_SECONDS = 5.0
_snapshot: dict[str, tuple[float, Audience]] = {}


def might_be_told(event_type: EventType, user) -> bool:
    """False when no channel could tell anyone of the event about ``user``, as of at most REFRESH_SECONDS ago."""
    now = time.monotonic()
    taken_at, audience = _snapshot.get(event_type.name, (None, None))
    if audience is None or now - taken_at > REFRESH_SECONDS:
        audiences = [channel.audience(event_type) for channel in CHANNELS.values()]
        audience = Audience(
            anyone=any(each.anyone for each in audiences),
            user_ids=frozenset().union(*(each.user_ids for each in audiences)),
        )
        _snapshot[event_type.name] = (now, audience)
    return audience.anyone or getattr(user, "pk", None) in audience.user_ids


def routing_snapshot_clear(**kwargs) -> None:
    """Forget the snapshot (a receiver of saves and deletes of preferences, routes and endpoints)."""
    _snapshot.clear()
