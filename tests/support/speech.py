"""Real speech for tests, made on this machine: Piper (the shipped voice) or
espeak-ng, resampled to the 16 kHz PCM16 mono the call API takes."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from functools import cache
from pathlib import Path

from voxfleet import audio
from voxfleet.audio import float_to_pcm16, pcm16_to_float

RATE = 16000


def resample(pcm: bytes, rate: int, to: int = RATE) -> bytes:
    return float_to_pcm16(audio.resample(pcm16_to_float(pcm), rate, to))


@cache
def piper_speech(text: str) -> bytes:
    from voxfleet.providers.local.tts import PiperTTS

    tts = PiperTTS()
    return resample(tts.render(text), tts.sample_rate)


def espeak_speech(text: str) -> bytes:
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is not installed (./vf test installs it)")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "speech.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(out), text], check=True)
        with wave.open(str(out)) as w:
            return resample(w.readframes(w.getnframes()), w.getframerate())


def write_wav(path: Path, pcm: bytes) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm)
    return path
