"""The live view's one feed per replica (LiveHub) with the in-process bus and a
scripted snapshot: a newcomer gets a snapshot before anything else; an
agent's event reaches every dashboard once; a dashboard whose socket is stuck
does not hold up the others, keeps a bounded backlog and, once it moves
again, gets a fresh snapshot; publishing needs no live Redis."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.server import free_port
from voxfleet.bus.memory import InProcessBus
from voxfleet.bus.redis import RedisBus
from voxfleet.dispatch.scaling import ScalingSignal
from voxfleet.errors import DispatchUnavailable
from voxfleet.messages.live import LiveKind, room_event
from voxfleet.roles.live_events import BUFFER, LiveEvents
from voxfleet.roles.live_hub import OUTBOX_LIMIT, LiveHub, Outbox
from voxfleet.roles.live_snapshot import LiveRoom, Snapshot

pytestmark = pytest.mark.unit

WAIT = 10.0  # bound on what must happen: a hang fails, not blocks


def scaling() -> ScalingSignal:
    zero = dict.fromkeys(ScalingSignal.model_fields, 0)
    return ScalingSignal(**zero)


class Rooms:
    """The snapshot the hub reads: whatever rooms the test puts here; ``failing``
    makes each read raise as Redis would while it is down."""

    def __init__(self) -> None:
        self.rooms: list[str] = []
        self.reads = 0
        self.failing = False

    async def __call__(self) -> Snapshot:
        self.reads += 1
        if self.failing:
            raise DispatchUnavailable("redis is unreachable")
        rooms = {r: LiveRoom(room_id=r, agent_id="a1", state="served") for r in self.rooms}
        return Snapshot(rooms=rooms, agents={}, scaling=scaling())


class Dashboard:
    """A socket that records what it is sent; ``stuck`` ones block on send until freed."""

    def __init__(self, stuck: bool = False) -> None:
        self.got: list[dict[str, Any]] = []
        self.free = asyncio.Event()
        if not stuck:
            self.free.set()
        self.arrived = asyncio.Event()
        self.outbox = Outbox(self.send)

    async def send(self, text: str) -> None:
        await self.free.wait()
        self.got.append(json.loads(text))
        self.arrived.set()

    def events(self) -> list[dict[str, Any]]:
        return [m for m in self.got if m["type"] == "event"]

    async def until(self, count: int, kind: str = "event") -> None:
        async with asyncio.timeout(WAIT):
            while len([m for m in self.got if m["type"] == kind]) < count:
                self.arrived.clear()
                await self.arrived.wait()


@pytest.fixture
async def hub() -> AsyncIterator[tuple[LiveHub, InProcessBus, Rooms]]:
    bus, rooms = InProcessBus(), Rooms()
    hub = LiveHub(rooms, bus, poll_seconds=30.0, debounce_seconds=0.0)
    yield hub, bus, rooms
    await hub.close()
    await bus.close()


async def dashboards_on(hub: LiveHub, *boards: Dashboard) -> list[asyncio.Task[None]]:
    writers = [asyncio.create_task(b.outbox.run()) for b in boards]
    for board in boards:
        hub.join(board.outbox)
    async with asyncio.timeout(WAIT):
        await hub.subscribed.wait()
    return writers


async def test_a_newcomer_gets_a_snapshot_first_then_every_event(
    hub: tuple[LiveHub, InProcessBus, Rooms],
) -> None:
    live, bus, rooms = hub
    rooms.rooms = ["c_one"]
    one, two = Dashboard(), Dashboard()
    writers = await dashboards_on(live, one, two)
    events = LiveEvents(bus)
    try:
        for board in (one, two):
            await board.until(1, "snapshot")
            assert board.got[0]["type"] == "snapshot"
            assert [r["room_id"] for r in board.got[0]["rooms"]] == ["c_one"]
        sent = [room_event(LiveKind.ATTACHED, f"c_{i}", "a1") for i in range(5)]
        for event in sent:
            events.emit(event)
        for board in (one, two):
            await board.until(5)
            got = board.events()
            assert [(e["call_id"], e["at"]) for e in got] == [(e.call_id, e.at) for e in sent]
            assert got[0]["kind"] == "attached" and got[0]["agent_id"] == "a1"
        # A room that appears comes as a change, after the snapshot.
        rooms.rooms = ["c_one", "c_two"]
        events.emit(room_event(LiveKind.ATTACHED, "c_two", "a1"))  # asks for a re-read
        await one.until(1, "changes")
        change = next(m for m in one.got if m["type"] == "changes")
        assert [r["room_id"] for r in change["rooms"]["upsert"]] == ["c_two"]
    finally:
        await events.close()
        for w in writers:
            w.cancel()


async def test_a_stuck_dashboard_does_not_hold_up_another_and_is_resynced(
    hub: tuple[LiveHub, InProcessBus, Rooms],
) -> None:
    live, bus, _rooms = hub
    fast, stuck = Dashboard(), Dashboard(stuck=True)
    writers = await dashboards_on(live, fast)
    events = LiveEvents(bus)
    try:
        await fast.until(1, "snapshot")
        # The stuck one gets its snapshot queued, then blocks on sending it.
        writers += await dashboards_on(live, stuck)
        async with asyncio.timeout(WAIT):
            while not stuck.outbox.synced:  # noqa: ASYNC110 - bounded poll
                await asyncio.sleep(0.01)
        many = OUTBOX_LIMIT * 3
        for i in range(many):
            events.emit(room_event(LiveKind.INTERRUPTION, f"c_{i}", "a1"))
            if i % 100 == 0:
                await asyncio.sleep(0)  # let the bus deliver as it goes
        await fast.until(many)
        assert [e["call_id"] for e in fast.events()] == [f"c_{i}" for i in range(many)]
        assert fast.outbox.resyncs == 0
        assert stuck.got == [] and stuck.outbox.resyncs >= 1
        # Freed, it gets what it was stuck on, then a fresh snapshot, then events again.
        stuck.free.set()
        await stuck.until(2, "snapshot")
        assert len(stuck.got) <= OUTBOX_LIMIT + 2
        before = len(stuck.events())
        events.emit(room_event(LiveKind.ENDED, "c_last", "a1", reason="caller_ended"))
        await stuck.until(before + 1)
        assert stuck.got[-1]["call_id"] == "c_last"
        assert stuck.got[-1]["detail"] == {"reason": "caller_ended"}
    finally:
        await events.close()
        for w in writers:
            w.cancel()


async def test_a_failed_snapshot_read_keeps_the_dashboards_and_the_events_flowing(
    hub: tuple[LiveHub, InProcessBus, Rooms],
) -> None:
    live, bus, rooms = hub
    board = Dashboard()
    writers = await dashboards_on(live, board)
    events = LiveEvents(bus)
    try:
        await board.until(1, "snapshot")
        rooms.failing = True
        reads = rooms.reads
        events.emit(room_event(LiveKind.ATTACHED, "c_one", "a1"))  # asks for a re-read
        await board.until(1)
        async with asyncio.timeout(WAIT):
            while rooms.reads == reads:  # noqa: ASYNC110 - bounded poll
                await asyncio.sleep(0.01)
        events.emit(room_event(LiveKind.ENDED, "c_one", "a1", reason="caller_ended"))
        await board.until(2)
        rooms.failing, rooms.rooms = False, ["c_two"]
        events.emit(room_event(LiveKind.ATTACHED, "c_two", "a1"))
        await board.until(1, "changes")
        assert [m["type"] for m in board.got] == ["snapshot", "event", "event", "event", "changes"]
    finally:
        await events.close()
        for w in writers:
            w.cancel()


async def test_publishing_without_redis_neither_waits_nor_raises_and_is_bounded() -> None:
    bus = RedisBus(f"redis://127.0.0.1:{free_port()}/0", name="live-test")
    events = LiveEvents(bus)
    try:
        for i in range(BUFFER * 2):
            events.emit(room_event(LiveKind.TURN, f"c_{i}", "a1"))  # returns at once
        assert events.dropped >= BUFFER  # the buffer kept only the newest
        async with asyncio.timeout(WAIT):
            while events.dropped < BUFFER * 2:  # noqa: ASYNC110 - bounded poll
                await asyncio.sleep(0.05)
        assert events.published == 0
    finally:
        await events.close()
        await bus.close()
