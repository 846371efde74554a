"""The channel layer of the embedded mode."""

import asyncio
from collections.abc import Coroutine

from channels.layers import InMemoryChannelLayer


class EmbeddedChannelLayer(InMemoryChannelLayer):
    """The in-memory layer, safe to publish to from other threads.

    In embedded mode Celery worker threads publish live events while websocket
    consumers wait on the web server's event loop. asyncio queues are not
    thread-safe: a message put from another thread does not wake the waiting
    consumer, which would see it only when something else woke its loop. Sends
    from another thread are therefore run on the loop that receives.
    """

    receiving_loop: asyncio.AbstractEventLoop | None = None

    async def receive(self, channel):
        self.receiving_loop = asyncio.get_running_loop()
        return await super().receive(channel)

    async def send(self, channel, message):
        await self._on_receiving_loop(super().send(channel, message))

    async def _on_receiving_loop(self, coroutine: Coroutine):
        loop = self.receiving_loop
        if loop is None or loop is asyncio.get_running_loop() or not loop.is_running():
            return await coroutine
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, loop))
