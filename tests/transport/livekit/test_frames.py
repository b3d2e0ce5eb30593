"""LiveKit audio frames to and from the pipeline's frames, with real
``rtc.AudioFrame`` objects, checked to the sample."""

from __future__ import annotations

import numpy as np
import pytest
from livekit import rtc

from voxfleet.transport.livekit.frames import (
    FRAME_BYTES,
    AgentFrames,
    CallerFrames,
    frame_pcm,
    pcm_frames,
)

pytestmark = pytest.mark.unit


def ramp(n: int, start: int = 0, step: int = 7) -> np.ndarray:
    return ((np.arange(n) * step + start) % 60000 - 30000).astype(np.int16)


def lk_frame(samples: np.ndarray, rate: int, channels: int = 1) -> rtc.AudioFrame:
    pcm = samples.astype("<i2").tobytes()
    return rtc.AudioFrame(pcm, rate, channels, len(samples) // channels)


def test_16k_mono_10ms_frames_become_20ms_frames_unchanged() -> None:
    caller = CallerFrames()
    samples = ramp(160 * 7)  # seven 10 ms frames: three whole 20 ms frames and a half
    out: list[bytes] = []
    for i in range(7):
        out += caller.push(lk_frame(samples[i * 160 : (i + 1) * 160], 16000))
    assert [len(f) for f in out] == [FRAME_BYTES] * 3
    assert b"".join(out) == samples[: 160 * 6].astype("<i2").tobytes()
    # The half frame waits for the next samples, which complete it.
    more = ramp(160, start=11)
    (fourth,) = caller.push(lk_frame(more, 16000))
    assert fourth == np.concatenate([samples[960:], more]).astype("<i2").tobytes()


def test_48k_stereo_is_averaged_and_every_third_sample_kept() -> None:
    left, right = ramp(960, step=5), ramp(960, start=1001, step=3)
    interleaved = np.stack([left, right], axis=1).reshape(-1)
    (frame,) = CallerFrames().push(lk_frame(interleaved, 48000, channels=2))
    mono = (left.astype(np.int32) + right.astype(np.int32)) // 2
    assert frame == mono[::3].astype("<i2").tobytes()


def test_a_new_track_drops_the_old_ones_part_frame() -> None:
    caller = CallerFrames()
    assert caller.push(lk_frame(ramp(100), 16000)) == []
    caller.reset()
    samples = ramp(320, start=5)
    assert caller.push(lk_frame(samples, 16000)) == [samples.astype("<i2").tobytes()]


def test_agent_pcm_becomes_frames_at_the_tts_rate_keeping_an_odd_byte() -> None:
    frames = AgentFrames(22050)
    pcm = ramp(441).astype("<i2").tobytes()
    first = frames.frame(pcm[:301])
    assert first is not None
    assert (first.sample_rate, first.num_channels, first.samples_per_channel) == (22050, 1, 150)
    assert frames.frame(b"") is None
    second = frames.frame(pcm[301:])
    assert second is not None and second.samples_per_channel == 291
    assert frame_pcm(first) + frame_pcm(second) == pcm


async def test_agent_frames_go_into_a_real_audio_source() -> None:
    source = rtc.AudioSource(24000, 1)
    frame = AgentFrames(24000).frame(ramp(480).astype("<i2").tobytes())
    assert frame is not None
    await source.capture_frame(frame)
    assert source.queued_duration > 0
    source.clear_queue()
    await source.aclose()


def test_pcm_frames_cut_a_wav_body_into_20ms_frames() -> None:
    pcm = ramp(16000 // 50 * 3 + 17).astype("<i2").tobytes() + b"\x01"
    frames = pcm_frames(pcm, 16000)
    assert [f.samples_per_channel for f in frames] == [320, 320, 320, 17]
    assert b"".join(frame_pcm(f) for f in frames) == pcm[:-1]
