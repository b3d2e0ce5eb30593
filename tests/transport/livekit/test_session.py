"""A real RoomSession on a LiveKitRoomLink, with scripted providers: the
caller's audio goes in as real ``rtc.AudioFrame``s (48 kHz stereo, as a
browser publishes it) through the link's entry points, and the agent's answer
comes out as frames into a real ``rtc.AudioSource`` and captions as data
packets carrying the media socket's JSON.

No LiveKit server runs on this machine (none is installable here), so the
link is not joined to a room: the SDK's network half (connect, subscribe,
publish) is not run by these tests; ``scripts/livekit-smoke`` runs it
against a real server."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
from livekit import rtc

from tests.audio import silence, tone
from tests.pipeline.test_session import DictStates, ListSink, profile, providers
from tests.transport.livekit.support import Packets, RecordingSource
from voxfleet.domain.conversation import ConversationState
from voxfleet.pipeline.session import RoomSession
from voxfleet.transport.livekit.caller import CALLER, TOPIC, CallerTiming
from voxfleet.transport.livekit.link import LiveKitRoomLink

pytestmark = pytest.mark.unit
TIMING = CallerTiming(resume_window=15.0, join_window=120.0, gone_after=20.0)


def browser_frames(pcm: bytes) -> list[rtc.AudioFrame]:
    """16 kHz mono as 10 ms frames of 48 kHz stereo: each sample three times on
    both channels, so the link's way back to 16 kHz mono is exact."""
    samples = np.frombuffer(pcm, "<i2")
    wide = np.repeat(samples, 3)
    stereo = np.stack([wide, wide], axis=1).reshape(-1).astype("<i2")
    step = 480 * 2
    return [
        rtc.AudioFrame(stereo[i : i + step].tobytes(), 48000, 2, 480)
        for i in range(0, len(stereo), step)
    ]


class Room:
    def __init__(self, state: ConversationState | None = None) -> None:
        self.source = RecordingSource(16000)
        self.packets = Packets()
        self.link = LiveKitRoomLink("r1", "wss://x", "token", TIMING, self.source, self.packets)
        self.state = state or ConversationState(room_id="r1", profile="test")
        self.profile = profile("Hi.")
        self.providers = providers()
        self.sink = ListSink()
        self.session = RoomSession(
            self.state,
            self.profile,
            self.providers,
            self.link,
            self.link,
            DictStates(),
            self.sink,
        )
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Room:
        await self.providers.prepare_phrases([self.profile.apology, self.profile.unavailable])
        self.task = asyncio.create_task(self.session.run(), name="session")
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.link.caller.data(b'{"type": "end"}', CALLER, TOPIC)
        assert self.task is not None
        await asyncio.wait_for(self.task, 10)
        await self.link.__aexit__(None, None, None)

    async def say(self, pcm: bytes) -> None:
        for i, frame in enumerate(browser_frames(pcm)):
            self.link.caller.audio(frame)
            if i % 2:
                await asyncio.sleep(0.02)


def agent_final(seq: int) -> Any:
    return lambda m: (
        m["type"] == "transcript" and m["role"] == "agent" and m["final"] and m["seq"] == seq
    )


async def samples_sent(source: RecordingSource) -> int:
    return sum(f.samples_per_channel for f in source.frames)


async def test_a_caller_utterance_is_answered_with_audio_frames_and_a_caption() -> None:
    async with Room() as room:
        await asyncio.sleep(0.05)
        assert room.packets.sent == [] and room.source.frames == []  # nobody listens yet
        room.link.caller.joined(CALLER)
        room.link.voice.listening()  # the caller subscribed to the agent's track
        await room.packets.wait_for(agent_final(0))
        greeting = await samples_sent(room.source)
        await room.say(tone(0.6) + silence(0.6))
        answer = await room.packets.wait_for(agent_final(2))
        await room.packets.wait_for(lambda m: m.get("state") == "listening" and m is not answer)
    user = [m for m in room.packets.sent if m["type"] == "transcript" and m["role"] == "user"]
    assert [m["text"] for m in user if m["final"]] == ["utterance 0.6 seconds"]
    assert answer["text"].startswith("You said utterance 0.6 seconds")
    frames = room.source.frames
    assert {(f.sample_rate, f.num_channels) for f in frames} == {(16000, 1)}
    # The scripted TTS speaks 60 ms a character: the answer's audio, to the sample.
    spoken = sum(len(w) for w in answer["text"].split())
    assert await samples_sent(room.source) - greeting == int(16000 * 0.06 * spoken)
    assert [t.text for t in room.sink.turns][1] == "utterance 0.6 seconds"


async def test_a_resumed_room_answers_without_a_second_greeting() -> None:
    # A new agent took the room (failover or drain): it joins the same room.
    state = ConversationState(room_id="r1", profile="test", greeted=True, next_seq=2)
    state.add_agent("Hi.")
    state.add_user("utterance 1.0 seconds")
    state.pending_user_text = "utterance 1.0 seconds"
    async with Room(state) as room:
        room.link.caller.joined(CALLER)
        room.link.voice.listening()
        reply = await room.packets.wait_for(agent_final(2))
    assert reply["text"].startswith("You said utterance 1.0 seconds")
    assert all(m.get("text") != "Hi." for m in room.packets.sent)


async def test_what_the_caller_says_while_the_room_is_held_is_answered_after() -> None:
    # The lease is unconfirmed (a Redis outage): the session takes no input, and
    # LiveKit cannot replay, so the link keeps the frames until it is released.
    state = ConversationState(room_id="r1", profile="test", greeted=True)
    async with Room(state) as room:
        room.link.caller.joined(CALLER)
        room.link.voice.listening()
        await room.packets.wait_for(lambda m: m.get("state") == "listening")
        room.session.paused = True
        await room.say(tone(0.6) + silence(0.6))
        assert not [m for m in room.packets.sent if m["type"] == "transcript"]
        room.session.paused = False
        answer = await room.packets.wait_for(
            lambda m: m["type"] == "transcript" and m["role"] == "agent" and m["final"]
        )
    # The scripted STT names a lost, doubled or reordered frame: none was.
    assert answer["text"].startswith("You said utterance 0.6 seconds")


async def test_the_caller_leaving_for_good_ends_the_session() -> None:
    timing = CallerTiming(resume_window=0.2, join_window=120.0, gone_after=20.0)
    source = RecordingSource(16000)
    link = LiveKitRoomLink("r1", "wss://unused", "token", timing, source, Packets())
    session = RoomSession(
        ConversationState(room_id="r1", profile="test", greeted=True),
        profile(),
        providers(),
        link,
        link,
        DictStates(),
        ListSink(),
    )
    link.caller.joined(CALLER)
    link.voice.listening()
    link.caller.left(CALLER)
    await asyncio.wait_for(session.run(), 10)
    assert session.hangup_reason == "caller_disconnected"
    await link.__aexit__(None, None, None)
