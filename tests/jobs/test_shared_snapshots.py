"""Sockets opening together share one snapshot, but never one started before they had subscribed."""

import asyncio
import time

from apps.jobs.consumers import SharedSnapshots


class CountingSnapshot:
    def __init__(self):
        self.computed = 0

    async def __call__(self) -> str:
        self.computed += 1
        number = self.computed
        await asyncio.sleep(0.05)
        return f"snapshot {number}"


def test_sockets_subscribed_before_a_snapshot_started_share_it():
    snapshots, compute = SharedSnapshots(), CountingSnapshot()

    async def open_together() -> list[str]:
        joined_at = time.monotonic()
        return await asyncio.gather(*(snapshots.shared(("user", 1), joined_at, compute) for _ in range(50)))

    assert asyncio.run(open_together()) == ["snapshot 1"] * 50
    assert compute.computed == 1


def test_a_socket_subscribed_after_a_snapshot_started_gets_its_own():
    snapshots, compute = SharedSnapshots(), CountingSnapshot()

    async def open_one_after_another() -> tuple[str, str, str]:
        first = asyncio.ensure_future(snapshots.shared(("user", 1), time.monotonic(), compute))
        await asyncio.sleep(0.01)  # the first snapshot is under way; an event may have happened since
        second = await snapshots.shared(("user", 1), time.monotonic(), compute)
        other_user = await snapshots.shared(("user", 2), 0.0, compute)
        return await first, second, other_user

    assert asyncio.run(open_one_after_another()) == ("snapshot 1", "snapshot 2", "snapshot 3")


def test_one_socket_giving_up_does_not_cancel_the_snapshot_of_the_others():
    snapshots, compute = SharedSnapshots(), CountingSnapshot()

    async def one_leaves() -> str:
        joined_at = time.monotonic()
        leaving = asyncio.ensure_future(snapshots.shared(("user", 1), joined_at, compute))
        staying = asyncio.ensure_future(snapshots.shared(("user", 1), joined_at, compute))
        await asyncio.sleep(0.01)
        leaving.cancel()
        return await staying

    assert asyncio.run(one_leaves()) == "snapshot 1"
