"""Audio between LiveKit and the pipeline. Caller audio arrives as
``rtc.AudioFrame``s and leaves here as the PCM16LE mono 16 kHz 20 ms frames the
turn detector takes; agent audio (TTS PCM at the provider's rate) leaves as
``rtc.AudioFrame``s for the agent's ``rtc.AudioSource``."""

from __future__ import annotations

import numpy as np
from livekit import rtc

from voxfleet.audio import INPUT_RATE, resample

FRAME_MS = 20
FRAME_SAMPLES = INPUT_RATE * FRAME_MS // 1000
FRAME_BYTES = FRAME_SAMPLES * 2


def frame_pcm(frame: rtc.AudioFrame) -> bytes:
    """The frame's samples as PCM16LE, channels interleaved."""
    count = frame.samples_per_channel * frame.num_channels
    return np.asarray(frame.data[:count], dtype="<i2").tobytes()


class CallerFrames:
    """Caller frames in, 20 ms pipeline frames out, to the sample.

    The link asks the SDK's ``AudioStream`` for 16 kHz mono in 20 ms frames, so
    the native side downmixes and resamples (the caller's track is Opus at
    48 kHz, often stereo). Frames of any other shape are still taken: channels
    are averaged, other rates resampled, and any frame size re-cut into 20 ms,
    so a different SDK setting cannot hand the VAD audio at the wrong rate."""

    def __init__(self) -> None:
        self._rest = b""

    def push(self, frame: rtc.AudioFrame) -> list[bytes]:
        pcm = self._rest + _mono_16k(frame)
        whole = len(pcm) - len(pcm) % FRAME_BYTES
        self._rest = pcm[whole:]
        return [pcm[i : i + FRAME_BYTES] for i in range(0, whole, FRAME_BYTES)]

    def reset(self) -> None:
        """A new track (the caller republished or came back): a part frame of
        the old one is not glued to the new one's first samples."""
        self._rest = b""


def _mono_16k(frame: rtc.AudioFrame) -> bytes:
    count = frame.samples_per_channel * frame.num_channels
    samples = np.asarray(frame.data[:count], dtype=np.int16)
    if frame.num_channels > 1:
        channels = samples.reshape(-1, frame.num_channels).astype(np.int32)
        # Floor division keeps the mean an int16 whatever the signs.
        samples = (channels.sum(axis=1) // frame.num_channels).astype(np.int16)
    if frame.sample_rate != INPUT_RATE:
        # On the sample values themselves (float32 holds every int16 exactly), so
        # a whole-number ratio (48 kHz) keeps every third sample unchanged.
        moved = resample(samples.astype(np.float32), frame.sample_rate, INPUT_RATE)
        samples = np.clip(np.rint(moved), -32768, 32767).astype(np.int16)
    return samples.astype("<i2").tobytes()


class AgentFrames:
    """Agent PCM (16-bit mono at ``sample_rate``, in pieces of any size) as
    frames for an ``rtc.AudioSource`` of that rate: the SDK encodes them to Opus
    at 48 kHz itself, so nothing is resampled here. A piece of odd length keeps
    its last byte for the next one."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self._odd = b""

    def frame(self, pcm: bytes) -> rtc.AudioFrame | None:
        data = self._odd + pcm
        even = len(data) - len(data) % 2
        self._odd = data[even:]
        if even == 0:
            return None
        return rtc.AudioFrame(data[:even], self.sample_rate, 1, even // 2)


def pcm_frames(pcm: bytes, sample_rate: int, ms: int = FRAME_MS) -> list[rtc.AudioFrame]:
    """Mono PCM16 cut into ``ms`` frames (the last one may be shorter): what a
    caller publishes (scripts/livekit-smoke)."""
    size = sample_rate * ms // 1000 * 2
    pcm = pcm[: len(pcm) - len(pcm) % 2]
    pieces = [pcm[i : i + size] for i in range(0, len(pcm), size)]
    return [rtc.AudioFrame(p, sample_rate, 1, len(p) // 2) for p in pieces]
