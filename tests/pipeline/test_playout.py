"""Playout: paced sending and the words the caller has heard."""

from __future__ import annotations

import pytest

from voxfleet.pipeline.playout import Playout

pytestmark = pytest.mark.unit


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_frames_are_20ms_and_heard_text_follows_the_clock() -> None:
    clock = FakeClock()
    sent: list[bytes] = []

    async def send(frame: bytes) -> None:
        sent.append(frame)
        clock.now += 0.02  # the sender takes real time; the clock follows playback

    rate = 1000
    playout = Playout(send, rate, lead_s=0.0, clock=clock)
    one_second = b"\x00\x00" * rate
    await playout.play(one_second, "one two three four")
    assert len(sent) == 50 and all(len(f) == 40 for f in sent)
    assert playout.heard_text() == "one two three four"
    clock.now = 100.0 + 0.5  # rewind: pretend only half has played
    assert playout.heard_text() == "one two"


async def test_underrun_restarts_the_playback_clock() -> None:
    clock = FakeClock()

    async def send(_frame: bytes) -> None:
        return None

    playout = Playout(send, 1000, lead_s=10.0, clock=clock)
    await playout.play(b"\x00\x00" * 1000, "first")
    clock.now += 5.0  # nothing sent for 5 s: the caller's buffer ran dry
    await playout.play(b"\x00\x00" * 1000, "second")
    clock.now += 0.5  # restarted at 105 with 1 s already played: 1.5 s heard
    assert playout.played_seconds() == pytest.approx(1.5)
    assert playout.heard_text() == "first"
