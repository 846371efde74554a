"""The ways an event reaches people (email, webhooks): each says whether it wants an event and routes it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from apps.core.events import EventType


@dataclass(frozen=True)
class Audience:
    """Whom a channel might tell of an event: anyone the event is about, or only these users."""

    anyone: bool = False
    user_ids: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Channel:
    name: str
    # Called for every event that might be wanted, before anything is stored.
    wants: Callable[[EventType, object], bool]
    # Creates the deliveries of a stored event and sends them once the transaction commits; returns how many.
    route: Callable[[object, EventType], int]
    # Whom the channel might tell of an event, for the snapshot that spares frequent events a query each.
    audience: Callable[[EventType], Audience]


CHANNELS: dict[str, Channel] = {}


def channel_register(channel: Channel) -> None:
    CHANNELS[channel.name] = channel
