"""Audio flood control: a caller's microphone in real time always passes, jitter up
to the burst allowance passes, and anything faster is refused."""

from __future__ import annotations

import pytest

from voxfleet.transport.ratelimit import AudioRateLimit

pytestmark = pytest.mark.unit

FRAME_S = 0.02  # 20 ms, what browsers send
TINY_S = 1 / 16_000  # a 2-byte frame: one PCM16 sample at 16 kHz


def first_refused(limit: AudioRateLimit, frames: list[tuple[float, float]]) -> int | None:
    """Index of the first (seconds, now) frame refused, or None when all pass."""
    for i, (seconds, now) in enumerate(frames):
        if not limit.admit(seconds, now):
            return i
    return None


def test_realtime_20ms_frames_for_a_minute_are_admitted() -> None:
    limit = AudioRateLimit()
    frames = [(FRAME_S, 1000.0 + i * FRAME_S) for i in range(int(60 / FRAME_S))]
    assert first_refused(limit, frames) is None


def test_two_second_burst_is_admitted_then_the_next_frame_refused() -> None:
    limit = AudioRateLimit()
    # 125 ms frames add up to exactly 2 s in binary floating point.
    assert first_refused(limit, [(0.125, 50.0)] * 16) is None
    assert not limit.admit(FRAME_S, 50.0)


def test_two_second_burst_of_20ms_frames_is_admitted() -> None:
    limit = AudioRateLimit()
    assert first_refused(limit, [(FRAME_S, 50.0)] * 100) is None
    assert not limit.admit(FRAME_S, 50.0)


def test_burst_after_realtime_streaming_is_admitted() -> None:
    # A network stall: a second of real time, then two seconds arrive at once.
    limit = AudioRateLimit()
    assert first_refused(limit, [(FRAME_S, i * FRAME_S) for i in range(50)]) is None
    assert first_refused(limit, [(0.125, 3.0)] * 16) is None
    assert not limit.admit(FRAME_S, 3.0)


@pytest.mark.parametrize("seconds", [10.0, 2.5])
def test_more_than_the_burst_at_once_is_refused(seconds: float) -> None:
    assert not AudioRateLimit().admit(seconds, 0.0)


def test_tiny_frames_beyond_the_frame_burst_are_refused() -> None:
    limit = AudioRateLimit()
    assert first_refused(limit, [(TINY_S, 7.0)] * 200) is None
    assert not limit.admit(TINY_S, 7.0)


def test_tiny_frames_faster_than_100_per_second_are_refused() -> None:
    # 200 frames/s: the 200-frame burst lasts two seconds, then frames are refused.
    limit = AudioRateLimit()
    refused_at = first_refused(limit, [(TINY_S, i / 200) for i in range(2000)])
    assert refused_at is not None
    assert 395 <= refused_at <= 405


def test_tiny_frames_at_100_per_second_are_admitted() -> None:
    limit = AudioRateLimit()
    assert first_refused(limit, [(TINY_S, i / 100) for i in range(6000)]) is None


def test_audio_budget_refills_after_idle_time() -> None:
    limit = AudioRateLimit()
    assert limit.admit(2.0, 0.0)
    assert not limit.admit(FRAME_S, 0.0)
    # After one second the budget has refilled by 1.1 s (realtime_factor), not more.
    assert limit.admit(1.0, 1.0)
    assert not limit.admit(0.2, 1.0)
    # A long silence refills it to the full burst, and no further.
    assert limit.admit(2.0, 60.0)
    assert not limit.admit(FRAME_S, 60.0)


def test_frame_budget_refills_after_idle_time() -> None:
    limit = AudioRateLimit()
    assert first_refused(limit, [(TINY_S, 0.0)] * 200) is None
    assert not limit.admit(TINY_S, 0.0)
    # One second later: 100 more frames (frames_per_s), not the whole burst.
    assert first_refused(limit, [(TINY_S, 1.0)] * 100) is None
    assert not limit.admit(TINY_S, 1.0)
