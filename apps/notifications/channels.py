"""The ways an event reaches people (email, webhooks): each says whether it wants an event and routes it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from apps.core.events import EventType


@dataclass(frozen=True)
class Channel:
    name: str
    # Cheap: called for every event, before anything is stored (one per finished job).
    wants: Callable[[EventType, object], bool]
    # Creates the deliveries of a stored event and sends them once the transaction commits; returns how many.
    route: Callable[[object, EventType], int]


CHANNELS: dict[str, Channel] = {}


def channel_register(channel: Channel) -> None:
    CHANNELS[channel.name] = channel
