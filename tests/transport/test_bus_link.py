"""The agent's end of a room on the bus, on the in-process bus: caller frames
taken once and in order, a replay asked for every gap, nothing taken while the
room is held and all of it asked for again after, a silent edge noticed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from voxfleet.bus.base import Subscription, room_control, room_down, room_up
from voxfleet.bus.memory import InProcessBus
from voxfleet.messages.client import State
from voxfleet.messages.room import (
    Hangup,
    Replay,
    Tick,
    decode_control,
    decode_down,
    encode,
    encode_audio,
    encode_numbered,
)
from voxfleet.pipeline.ports import AudioIn, CallerEvent, CallerGone, CallerHungUp, StreamPosition
from voxfleet.transport.bus_link import BusRoomLink

pytestmark = pytest.mark.unit
EPOCH = 7
ROOM = "r1"


class Edge:
    """The edge's side, by hand: numbered caller frames out, control in."""

    def __init__(self, bus: InProcessBus) -> None:
        self.bus = bus
        self.control: Subscription | None = None

    async def frame(self, seq: int, pcm: bytes = b"\x00\x00") -> None:
        await self.bus.publish(room_up(ROOM), encode_numbered(EPOCH, seq, encode_audio(pcm)))

    async def hangup(self, seq: int) -> None:
        message = encode(Hangup(reason="caller_ended"))
        await self.bus.publish(room_up(ROOM), encode_numbered(EPOCH, seq, message))

    async def tick(self, seq: int) -> None:
        await self.bus.publish(room_control(ROOM), encode(Tick(stream="up", epoch=EPOCH, seq=seq)))

    async def replay_asked(self, timeout: float = 5.0) -> int:
        assert self.control is not None
        async with asyncio.timeout(timeout):
            while True:
                raw = await self.control.get()
                assert raw is not None
                message = decode_control(raw)
                if isinstance(message, Replay) and message.stream == "up":
                    assert message.epoch == EPOCH
                    return message.after


@pytest.fixture
async def edge() -> AsyncIterator[Edge]:
    bus = InProcessBus()
    e = Edge(bus)
    e.control = await bus.subscribe(room_control(ROOM))
    yield e
    await bus.close()


async def _take(events: AsyncIterator[CallerEvent], n: int) -> list[CallerEvent]:
    out = []
    async with asyncio.timeout(5):
        async for event in events:
            out.append(event)
            if len(out) == n:
                break
    return out


def _seqs(events: list[CallerEvent]) -> list[int]:
    return [e.position.seq for e in events if isinstance(e, AudioIn)]


async def test_frames_are_taken_once_in_order_and_gaps_asked_for(edge: Edge) -> None:
    async with BusRoomLink(edge.bus, ROOM, StreamPosition(EPOCH, 0)) as link:
        taken = asyncio.create_task(_take(link.events(), 5))
        await edge.frame(1)
        await edge.frame(3)  # 2 was lost on the bus
        assert await edge.replay_asked() == 1
        for seq in (2, 3, 2, 4):  # the replay, overlapping what came since
            await edge.frame(seq)
        await edge.hangup(5)
        events = await taken
        assert _seqs(events) == [1, 2, 3, 4]
        assert events[-1] == CallerHungUp("caller_ended")


async def test_a_tick_ahead_reveals_a_trailing_loss(edge: Edge) -> None:
    async with BusRoomLink(edge.bus, ROOM, StreamPosition(EPOCH, 0)) as link:
        events = link.events()
        await edge.frame(1)
        assert _seqs(await _take(events, 1)) == [1]
        await edge.tick(3)  # frames 2 and 3 went out, and nothing after them
        waiter = asyncio.create_task(_take(events, 2))
        assert await edge.replay_asked() == 1
        await edge.frame(2)
        await edge.frame(3)
        assert _seqs(await waiter) == [2, 3]


async def test_nothing_is_taken_while_held_and_it_is_asked_for_after(edge: Edge) -> None:
    async with BusRoomLink(edge.bus, ROOM, StreamPosition(EPOCH, 0)) as link:
        events = link.events()
        await edge.frame(1)
        assert _seqs(await _take(events, 1)) == [1]
        link.hold()
        waiter = asyncio.create_task(_take(events, 2))
        await edge.frame(2)
        await edge.frame(3)
        await asyncio.sleep(0.05)
        assert not waiter.done()
        link.release()
        await edge.frame(4)
        assert await edge.replay_asked() == 1
        await edge.frame(2)
        await edge.frame(3)
        assert _seqs(await waiter) == [2, 3]


async def test_a_room_that_joins_takes_the_audio_where_it_is(edge: Edge) -> None:
    async with BusRoomLink(edge.bus, ROOM, None) as link:
        taken = asyncio.create_task(_take(link.events(), 2))
        await asyncio.sleep(0)
        await edge.frame(500)
        await edge.frame(501)
        assert _seqs(await taken) == [500, 501]


async def test_a_silent_edge_means_the_caller_is_gone(edge: Edge) -> None:
    async with BusRoomLink(edge.bus, ROOM, StreamPosition(EPOCH, 0), caller_gone_after=1.5) as link:
        events = link.events()
        for _ in range(2):  # ticks keep a quiet caller's room alive
            await edge.tick(0)
            await asyncio.sleep(0.8)
        gone = await _take(events, 1)
        assert gone == [CallerGone()]


async def test_what_the_edge_missed_is_sent_again(edge: Edge) -> None:
    down: Subscription = await edge.bus.subscribe(room_down(ROOM))
    async with BusRoomLink(edge.bus, ROOM, StreamPosition(EPOCH, 0)) as link:
        await link.send(State(state="listening"))
        await link.audio(b"\x01\x00")
        got = [decode_down(m) for m in [await down.get(1), await down.get(1)] if m]
        assert [n.seq for n in got] == [1, 2]
        epoch = got[0].epoch
        request = Replay(stream="down", epoch=epoch, after=0)
        await edge.bus.publish(room_control(ROOM), encode(request))
        again = [decode_down(m) for m in [await down.get(1), await down.get(1)] if m]
        assert [(n.seq, n.message) for n in again] == [(n.seq, n.message) for n in got]
    await down.close()
