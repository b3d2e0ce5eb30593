"""Test audio: tones stand in for speech with the energy VAD; real speech comes
from Piper (or espeak-ng) for the real models."""

from __future__ import annotations

import numpy as np

RATE = 16000


def tone(seconds: float, freq: float = 220.0, amplitude: float = 0.3) -> bytes:
    t = np.arange(int(RATE * seconds)) / RATE
    return (np.sin(2 * np.pi * freq * t) * amplitude * 32767).astype("<i2").tobytes()


def silence(seconds: float) -> bytes:
    return b"\x00\x00" * int(RATE * seconds)


def frames(pcm: bytes, ms: int = 20) -> list[bytes]:
    size = RATE * ms // 1000 * 2
    return [pcm[i : i + size] for i in range(0, len(pcm), size)]
