"""The embedded channel layer delivers events published from worker threads at once."""

import asyncio
import threading

from asgiref.sync import async_to_sync

from apps.core.channel_layers import EmbeddedChannelLayer

# The plain in-memory layer delivers a message put from another thread only when
# something else wakes the receiving loop: here, its 10 s timeout. The publisher
# gives up waiting for delivery long before that.
RECEIVE_TIMEOUT_SECONDS = 10
DELIVERY_WAIT_SECONDS = 5


def test_event_published_from_another_thread_wakes_the_receiver():
    layer = EmbeddedChannelLayer()
    delivered = threading.Event()
    publisher_saw_delivery = []

    def publish():
        async_to_sync(layer.group_send)("user.1", {"type": "live.event", "event": "job.updated"})
        publisher_saw_delivery.append(delivered.wait(DELIVERY_WAIT_SECONDS))

    async def receive_while_a_thread_publishes():
        channel = await layer.new_channel()
        await layer.group_add("user.1", channel)
        publisher = threading.Thread(target=publish)
        receiving = asyncio.ensure_future(layer.receive(channel))
        await asyncio.sleep(0.1)  # the receiver is waiting before the thread publishes
        publisher.start()
        message = await asyncio.wait_for(receiving, RECEIVE_TIMEOUT_SECONDS)
        delivered.set()
        await asyncio.to_thread(publisher.join)
        return message

    assert asyncio.run(receive_while_a_thread_publishes())["event"] == "job.updated"
    assert publisher_saw_delivery == [True]


def test_send_and_receive_on_one_loop_still_work():
    layer = EmbeddedChannelLayer()

    async def round_trip():
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "health.ping"})
        return await layer.receive(channel)

    assert async_to_sync(round_trip)() == {"type": "health.ping"}
