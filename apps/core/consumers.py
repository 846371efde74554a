"""Websocket consumers of the portal core, and what other apps contribute to them.

Core imports no app: accounts installs the access rule from its ``AppConfig.ready``.
"""

from collections.abc import Callable

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from .services import user_group_name

UNAUTHENTICATED_CLOSE_CODE = 4401
# Scripts pass their API token as the subprotocols ["bearer", <token>] (browsers cannot set headers).
BEARER_SUBPROTOCOL = "bearer"


def _refuse_every_socket(*, scope) -> str:
    # Fails closed: without the accounts' rule nobody could be checked, so nobody gets in.
    return "No websocket access rule is installed."


# Why a socket may not open or must close now (None while it may stay); accounts installs its rule.
_websocket_refusal: Callable[..., str | None] = _refuse_every_socket


def websocket_refusal_install(rule: Callable[..., str | None]) -> None:
    """Make ``rule(scope=...)`` decide who may keep a socket open; until then every socket is refused."""
    global _websocket_refusal
    _websocket_refusal = rule


class StreamRefused(Exception):
    """Raised by ``groups_for`` to refuse a stream this user may not open; ``code`` is the close code."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


class AuthenticatedConsumer(AsyncJsonWebsocketConsumer):
    """Base for every stream: refuses anonymous and inactive users.

    Subclasses return the channel-layer groups to join from ``groups_for`` (or
    raise StreamRefused), may send a first message from ``stream_opened`` and
    may override ``may_receive`` to re-check access for each event, since
    rights can change while a socket stays open.
    """

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or await database_sync_to_async(self.access_lost)():
            await self.close(code=UNAUTHENTICATED_CLOSE_CODE)
            return
        try:
            self.joined_groups = await self.groups_for(user)
        except StreamRefused as refusal:
            await self.close(code=refusal.code)
            return
        for group in self.joined_groups:
            await self.channel_layer.group_add(group, self.channel_name)
        # A client that sent its API token as a subprotocol must get one back.
        offered = self.scope.get("subprotocols") or ()
        await self.accept(subprotocol=BEARER_SUBPROTOCOL if BEARER_SUBPROTOCOL in offered else None)
        await self.stream_opened(user)

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "joined_groups", ()):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def groups_for(self, user) -> list[str]:
        raise NotImplementedError

    async def stream_opened(self, user) -> None:
        """Runs once accepted, after the groups were joined: a snapshot sent here misses no event."""

    async def may_receive(self, message: dict) -> bool:
        return not await database_sync_to_async(self.access_lost)()

    def access_lost(self) -> bool:
        """True when HTTP would no longer let this connection's user in: signed out, session expired or
        idle too long, account deactivated, token revoked or expired, or a second factor their role
        requires not (or no longer) in place."""
        return _websocket_refusal(scope=self.scope) is not None

    async def live_event(self, message: dict) -> None:
        """Forward a live event published by a service, if the user may still see it."""
        if await self.may_receive(message):
            await self.send_json({"event": message["event"], "payload": message["payload"]})
        else:
            await self.close(code=UNAUTHENTICATED_CLOSE_CODE)


class UserEventsConsumer(AuthenticatedConsumer):
    """Live events addressed to the signed-in user (job and report updates, notices)."""

    async def groups_for(self, user) -> list[str]:
        return [user_group_name(user.pk)]
