"""The LiveKit link's logic, without a server: caller frames numbered and
held, the caller's grace to come back, the room's and the connection's end,
and what the agent says as data packets and audio frames. Fed with real
``rtc.AudioFrame``s, ``rtc.AudioSource``s and the SDK's disconnect reasons.

No LiveKit server runs on this machine (none is installable here), so the
SDK's network half (joining, subscribing, publishing) is not run by these
tests; ``scripts/livekit-smoke`` runs it against a real server."""

from __future__ import annotations

import asyncio
import json
import time

import numpy as np
import pytest
from livekit import rtc

from tests.transport.livekit.support import Packets, RecordingSource
from voxfleet.messages.client import HangUp, Interrupt, State, Transcript
from voxfleet.pipeline.ports import AudioIn, CallerEvent, CallerGone, CallerHungUp
from voxfleet.transport.livekit.caller import CALLER, TOPIC, CallerFeed, CallerTiming
from voxfleet.transport.livekit.voice import AgentVoice, encode_message

pytestmark = pytest.mark.unit
TIMING = CallerTiming(resume_window=15.0, join_window=120.0, gone_after=20.0)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def frame(k: int, samples: int = 320) -> rtc.AudioFrame:
    """A 16 kHz mono frame whose every sample is ``k``."""
    return rtc.AudioFrame(np.full(samples, k, "<i2").tobytes(), 16000, 1, samples)


async def take(feed: CallerFeed, n: int) -> list[CallerEvent]:
    out: list[CallerEvent] = []
    async with asyncio.timeout(5):
        async for event in feed.events():
            out.append(event)
            if len(out) == n:
                break
    return out


def values(events: list[CallerEvent]) -> list[int]:
    return [int(np.frombuffer(e.pcm, "<i2")[0]) for e in events if isinstance(e, AudioIn)]


async def test_frames_are_numbered_in_one_epoch_in_order() -> None:
    feed = CallerFeed(TIMING)
    feed.joined(CALLER)
    for k in range(1, 4):
        feed.audio(frame(k))
    got = await take(feed, 3)
    assert values(got) == [1, 2, 3]
    positions = [e.position for e in got if isinstance(e, AudioIn)]
    assert [p.seq for p in positions] == [1, 2, 3]
    assert {p.epoch for p in positions} == {feed.epoch}


async def test_audio_during_hold_is_kept_and_taken_after_release_in_order() -> None:
    feed = CallerFeed(TIMING)
    feed.joined(CALLER)
    feed.audio(frame(1))
    assert values(await take(feed, 1)) == [1]
    feed.hold()
    for k in range(2, 6):
        feed.audio(frame(k))
    reader = asyncio.create_task(take(feed, 4))
    await asyncio.sleep(0.05)
    assert not reader.done()  # held: nothing is taken
    feed.release()
    got = await reader
    assert values(got) == [2, 3, 4, 5]
    assert [e.position.seq for e in got if isinstance(e, AudioIn)] == [2, 3, 4, 5]


async def test_the_hold_buffer_is_bounded_and_keeps_the_newest() -> None:
    feed = CallerFeed(TIMING, hold_seconds=0.1)  # five frames
    feed.joined(CALLER)
    feed.hold()
    for k in range(1, 9):
        feed.audio(frame(k))
    assert feed.dropped == 3
    feed.release()
    got = await take(feed, 5)
    assert values(got) == [4, 5, 6, 7, 8]
    assert feed.dropped == 0  # counted, logged at release


def test_a_caller_who_comes_back_within_the_window_is_still_on_the_call() -> None:
    clock = Clock()
    feed = CallerFeed(TIMING, clock=clock)
    feed.joined(CALLER)
    feed.left(CALLER)
    clock.now += 14.0
    assert feed.due(clock()) is None
    feed.joined(CALLER)
    clock.now += 60.0
    assert feed.due(clock()) is None


def test_a_caller_who_stays_away_has_hung_up() -> None:
    clock = Clock()
    feed = CallerFeed(TIMING, clock=clock)
    feed.joined(CALLER)
    feed.joined("agent-agent-old")
    feed.left("agent-agent-old")  # another agent leaving is nothing to us
    assert feed.due(clock.now + 1000) is None
    feed.left(CALLER)
    assert feed.due(clock.now + 14.9) is None
    assert feed.due(clock.now + 15.0) == CallerHungUp("caller_disconnected")


async def test_a_caller_who_leaves_on_purpose_has_hung_up_at_once() -> None:
    """The page hangs up by leaving the room (its token may not send data):
    a client-initiated leave ends the call now, not after the resume window."""
    clock = Clock()
    feed = CallerFeed(TIMING, clock=clock)
    feed.joined(CALLER)
    feed.left("agent-agent-old", hung_up=True)  # not the caller: nothing
    feed.left(CALLER, hung_up=True)
    events = [e async for e in feed.events()]
    assert events == [CallerHungUp("caller_ended")]


def test_a_resumed_rooms_caller_who_is_not_there_has_the_resume_window() -> None:
    clock = Clock()
    feed = CallerFeed(TIMING, seen=True, clock=clock)
    assert feed.due(clock.now + 14.9) is None
    assert feed.due(clock.now + 15.0) == CallerHungUp("caller_disconnected")


def test_a_caller_who_never_joins_is_never_connected_after_the_join_window() -> None:
    clock = Clock()
    feed = CallerFeed(TIMING, clock=clock)
    assert feed.due(clock.now + 119.0) is None
    assert feed.due(clock.now + 120.0) == CallerHungUp("never_connected")


async def test_end_comes_after_the_audio_before_it() -> None:
    feed = CallerFeed(TIMING)
    feed.joined(CALLER)
    feed.data(b'{"type": "end"}', "agent-x", TOPIC)
    feed.data(b'{"type": "end"}', CALLER, "chat")
    feed.data(b"{not json", CALLER, TOPIC)
    feed.audio(frame(1))
    feed.data(b'{"type": "end"}', CALLER, TOPIC)
    got = [e async for e in feed.events()]
    assert values(got) == [1]
    assert got[-1] == CallerHungUp("caller_ended")


async def test_the_end_passes_a_hold() -> None:
    feed = CallerFeed(TIMING)
    feed.joined(CALLER)
    feed.hold()
    feed.audio(frame(1))
    feed.disconnected(rtc.DisconnectReason.ROOM_DELETED)
    got = [e async for e in feed.events()]
    assert got == [CallerHungUp("room_ended")]


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        (rtc.DisconnectReason.ROOM_DELETED, [CallerHungUp("room_ended")]),
        (rtc.DisconnectReason.ROOM_CLOSED, [CallerHungUp("room_ended")]),
        (rtc.DisconnectReason.SIGNAL_CLOSE, [CallerGone()]),
        (rtc.DisconnectReason.CONNECTION_TIMEOUT, [CallerGone()]),
        (rtc.DisconnectReason.DUPLICATE_IDENTITY, []),  # leave; the call goes on
    ],
)
async def test_the_agents_disconnect_reason_decides_the_end(
    reason: rtc.DisconnectReason.ValueType, expected: list[CallerEvent]
) -> None:
    feed = CallerFeed(TIMING)
    feed.joined(CALLER)
    feed.disconnected(reason)
    async with asyncio.timeout(5):
        assert [e async for e in feed.events()] == expected


def test_our_own_leave_ends_nothing() -> None:
    clock = Clock()
    feed = CallerFeed(TIMING, clock=clock)
    feed.joined(CALLER)
    feed.disconnected(rtc.DisconnectReason.CLIENT_INITIATED)
    assert feed.due(clock.now + 1000) is None


def test_a_connection_that_does_not_come_back_means_the_caller_is_gone() -> None:
    clock = Clock()
    feed = CallerFeed(TIMING, clock=clock)
    feed.joined(CALLER)
    feed.reconnecting()
    clock.now += 19.0
    feed.reconnected()
    assert feed.due(clock.now + 100) is None
    feed.reconnecting()
    assert feed.due(clock.now + 19.9) is None
    assert feed.due(clock.now + 20.0) == CallerGone()


async def test_events_wake_for_a_deadline_without_any_input() -> None:
    feed = CallerFeed(CallerTiming(resume_window=0.05, join_window=0.05, gone_after=1.0))
    feed.joined(CALLER)
    feed.left(CALLER)
    async with asyncio.timeout(5):
        assert [e async for e in feed.events()] == [CallerHungUp("caller_disconnected")]


# -- what the agent says -------------------------------------------------------------


def test_messages_are_the_sockets_json_and_hang_up_is_ended() -> None:
    caption = Transcript(role="agent", text="Hi.", final=True, seq=0)
    assert encode_message(caption) == caption.to_json().encode()
    assert json.loads(encode_message(HangUp())) == {"type": "ended", "reason": "agent_ended"}
    operator = HangUp(reason="operator_ended")  # an admin ended it from the monitor
    assert json.loads(encode_message(operator)) == {"type": "ended", "reason": "operator_ended"}


async def test_nothing_is_said_before_the_caller_listens() -> None:
    source, packets = RecordingSource(22050), Packets()
    voice = AgentVoice(source, packets, wait_until=time.monotonic() + 60)
    sending = asyncio.create_task(voice.send(State(state="speaking")))
    await asyncio.sleep(0.05)
    assert not sending.done() and packets.sent == []
    voice.listening()
    await sending
    await voice.audio(np.arange(441, dtype="<i2").tobytes())
    assert packets.sent == [{"type": "state", "state": "speaking"}]
    assert [(f.sample_rate, f.samples_per_channel) for f in source.frames] == [(22050, 441)]
    await source.aclose()


async def test_output_goes_on_after_the_join_window_without_a_listener() -> None:
    source, packets = RecordingSource(16000), Packets()
    voice = AgentVoice(source, packets, wait_until=0.0)  # long past
    async with asyncio.timeout(5):
        await voice.send(State(state="listening"))
    assert packets.sent == [{"type": "state", "state": "listening"}]
    await source.aclose()


async def test_an_interrupt_drops_what_the_source_still_holds() -> None:
    source, packets = RecordingSource(16000), Packets()
    voice = AgentVoice(source, packets, wait_until=0.0)
    voice.listening()
    await voice.audio(b"\x01\x00" * 3200)  # 200 ms
    assert source.queued_duration > 0.1
    await voice.send(Interrupt())
    assert source.queued_duration == 0.0
    assert packets.sent == [{"type": "interrupt"}]
    await source.aclose()
