"""Routing events to the channels that want them; the dispatcher behind ``apps.core.events.notify``."""

from __future__ import annotations

from django.db.models import Model

from apps.audit.services import event_record
from apps.core.events import EventType

from .channels import CHANNELS
from .models import Event
from .routing import might_be_told


def event_dispatch(
    event_type: EventType, *, data: dict, user=None, obj: Model | None = None, summary: str = ""
) -> Event | None:
    """Store the event and hand it to every channel that wants it, inside the caller's transaction.

    An event nobody is told of is not stored; it is still recorded in the audit trail unless it is one of the
    frequent ones (a job's end) whose own audit event already records the fact.
    """
    if event_type.frequent and not might_be_told(event_type, user):
        return None
    channels = [channel for channel in CHANNELS.values() if channel.wants(event_type, user)]
    if not channels and event_type.frequent:
        return None
    event = None
    routed: dict[str, int] = {}
    if channels:
        event = Event.objects.create(
            name=event_type.name,
            summary=summary[:300],
            data=data,
            user=user if getattr(user, "pk", None) else None,
            object_type=obj._meta.label_lower if obj is not None else "",
            object_id=str(obj.pk) if obj is not None else "",
        )
        routed = {channel.name: channel.route(event, event_type) for channel in channels}
    event_record(
        action=f"notification.{event_type.name}",
        obj=obj,
        changes={"event_id": str(event.pk) if event else "", "summary": summary, **routed},
    )
    return event
