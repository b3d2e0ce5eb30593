"""PCM16 and float audio helpers shared by the pipeline, providers, tests and
benchmarks (pure numpy)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Float32Array = npt.NDArray[np.float32]
INPUT_RATE = 16000  # what callers send and the VAD and STT take


def pcm16_to_float(pcm: bytes) -> Float32Array:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


def float_to_pcm16(audio: Float32Array) -> bytes:
    return (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def resample(audio: Float32Array, rate: int, to: int) -> Float32Array:
    """Linear-interpolation resampling: good enough for speech going into
    Whisper, cheap enough to run inline."""
    if rate == to or len(audio) == 0:
        return audio
    positions = np.arange(0, len(audio), rate / to)
    out: Float32Array = np.interp(positions, np.arange(len(audio)), audio).astype(np.float32)
    return out


def duration_s(pcm: bytes, rate: int) -> float:
    return len(pcm) / 2 / rate
