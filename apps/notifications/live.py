"""The portal's own channel: an event shows, as it happens, under "Your live events" on the dashboard of everyone who
may be told of it, whatever their email choices (the user's group of /ws/events/).

Not for a job's end: its owner already follows the job live on /ws/jobs/, and announcing every job here would cost
each finished job a query.
"""

from __future__ import annotations

from django.db import transaction

from apps.core.events import EventType
from apps.core.services import live_event_publish, user_group_name

from .channels import Audience, Channel
from .models import Event
from .preferences import users_who_may_be_told


def live_wants(event_type: EventType, user) -> bool:
    return not event_type.frequent and users_who_may_be_told(event_type, user).exists()


def live_audience(event_type: EventType) -> Audience:
    return Audience()


def live_route(event: Event, event_type: EventType) -> int:
    """Publish the event's summary and link to each user who may be told of it, once the transaction commits."""
    user_ids = list(users_who_may_be_told(event_type, event.user).values_list("pk", flat=True))
    payload = {"summary": event.summary, **({"path": event.data["path"]} if "path" in event.data else {})}

    def publish() -> None:
        for user_id in user_ids:
            live_event_publish(group=user_group_name(user_id), event=event.name, payload=payload)

    transaction.on_commit(publish)
    return len(user_ids)


LIVE_CHANNEL = Channel(name="live", wants=live_wants, route=live_route, audience=live_audience)
