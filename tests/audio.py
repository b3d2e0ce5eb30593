"""Test audio: coded tones stand in for speech with the energy VAD (and the
scripted STT tells a lost, doubled or reordered 20 ms frame); real speech comes
from Piper (or espeak-ng) for the real models."""

from __future__ import annotations

from voxfleet.providers.scripted import coded_speech

RATE = 16000


def tone(seconds: float) -> bytes:
    """``seconds`` of coded "speech" (whole 20 ms frames)."""
    return coded_speech(seconds)


def silence(seconds: float) -> bytes:
    return b"\x00\x00" * int(RATE * seconds)


def frames(pcm: bytes, ms: int = 20) -> list[bytes]:
    size = RATE * ms // 1000 * 2
    return [pcm[i : i + size] for i in range(0, len(pcm), size)]
