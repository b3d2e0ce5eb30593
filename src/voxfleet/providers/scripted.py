"""Scripted providers with set timings: real subclasses of the provider bases,
so the pipeline, the dispatch and the failover logic can be tested fast and
deterministically, in-process or in real agent processes.

The VAD is a plain energy detector, so test audio is simply tone (speech) and
silence. The STT names the utterance by its length ("utterance 1.2 seconds"),
which lets a test check that each thing the caller said arrived exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence

import numpy as np

from voxfleet.audio import Float32Array
from voxfleet.providers.base import (
    LLM,
    STT,
    TTS,
    VAD,
    Capabilities,
    Providers,
    VADStream,
)
from voxfleet.providers.chat import ChatMessage, GenerationParams, Piece, ToolSpec


class _EnergyStream(VADStream):
    window = 512

    def __init__(self, threshold: float) -> None:
        self._threshold = threshold

    def probability(self, window: Float32Array) -> float:
        rms = float(np.sqrt(np.mean(np.square(window)))) if len(window) else 0.0
        return 1.0 if rms >= self._threshold else 0.0


class EnergyVAD(VAD):
    name = "energy"

    def __init__(self, threshold: float = 0.02) -> None:
        self._threshold = threshold

    def stream(self) -> VADStream:
        return _EnergyStream(self._threshold)


class ScriptedSTT(STT):
    """Names an utterance by its length: "utterance 1.2 seconds". Coded speech
    (``coded_speech``) is also checked frame by frame: a 20 ms frame lost,
    doubled or out of order adds ", frames broken after N" to the name."""

    name = "scripted-stt"

    def __init__(self, delay: float = 0.05) -> None:
        self.delay = delay

    async def _transcribe(self, audio: Float32Array) -> str:
        await asyncio.sleep(self.delay)
        symbols = _frame_symbols(audio)
        if symbols:
            text = f"utterance {len(symbols) * FRAME / RATE:.1f} seconds"
            broken = next((i for i, s in enumerate(symbols) if s != i % SYMBOLS), None)
            return text if broken is None else f"{text}, frames broken after {broken - 1}"
        voiced = _voiced_seconds(audio)
        return f"utterance {voiced:.1f} seconds" if voiced > 0 else ""


RATE = 16000
FRAME = 320  # 20 ms: one symbol of coded speech
FIRST_BIN = 4  # 200 Hz: frame k is a cosine at 50 Hz * (FIRST_BIN + k % SYMBOLS)
SYMBOLS = 64
AMPLITUDE = 0.3


def coded_speech(seconds: float) -> bytes:
    """Test "speech" that names each of its 20 ms frames: frame k is a cosine of
    a whole number of periods at bin FIRST_BIN + k % 64 of a 320-point FFT. The
    energy VAD hears it as speech; ScriptedSTT reads the frames back."""
    t = np.arange(FRAME) / RATE
    frames = [
        np.cos(2 * np.pi * 50.0 * (FIRST_BIN + k % SYMBOLS) * t)
        for k in range(round(seconds * RATE / FRAME))
    ]
    audio = np.concatenate(frames) if frames else np.zeros(0)
    return (audio * AMPLITUDE * 32767).astype("<i2").tobytes()


def _frame_symbols(audio: Float32Array) -> list[int]:
    """The symbols of coded speech in ``audio``, frame by frame from its onset
    (a cosine frame starts at its peak), until silence; [] if it is not coded."""
    loud = np.flatnonzero(np.abs(audio) > AMPLITUDE / 2)
    if len(loud) == 0:
        return []
    start = int(loud[0])
    symbols: list[int] = []
    while start + FRAME <= len(audio):
        block = audio[start : start + FRAME]
        if float(np.sqrt(np.mean(np.square(block)))) < 0.02:
            break
        spectrum = np.abs(np.fft.rfft(block))
        peak = int(np.argmax(spectrum))
        if spectrum[peak] < 0.8 * float(np.sum(spectrum)) / 2 or peak < FIRST_BIN:
            return []  # not one clean bin: not coded speech
        symbols.append(peak - FIRST_BIN)
        start += FRAME
    return symbols


def _voiced_seconds(audio: Float32Array, rate: int = 16000) -> float:
    """Seconds of tone in ``audio``, to a tenth, counted in 10 ms blocks."""
    block = rate // 100
    blocks = len(audio) // block
    if blocks == 0:
        return 0.0
    energy = np.sqrt(np.mean(np.square(audio[: blocks * block].reshape(blocks, block)), axis=1))
    return round(float(np.count_nonzero(energy >= 0.02)) / 100, 1)


class ScriptedLLM(LLM):
    name = "scripted-llm"
    model = "scripted"
    capabilities = Capabilities(streaming=True)

    def __init__(self, first_token: float = 0.05, per_token: float = 0.01) -> None:
        self.first_token = first_token
        self.per_token = per_token

    async def _stream(
        self, messages: Sequence[ChatMessage], params: GenerationParams, tools: Sequence[ToolSpec]
    ) -> AsyncGenerator[Piece, None]:
        heard = messages[-1].content
        turn = sum(1 for m in messages if m.role == "user")
        words = f"You said {heard}, that is turn {turn}. Thanks, I got it.".split(" ")
        await asyncio.sleep(self.first_token)
        for i, word in enumerate(words[: params.max_tokens]):
            if i:
                await asyncio.sleep(self.per_token)
            yield word if i == 0 else " " + word


class ScriptedTTS(TTS):
    """A 300 Hz tone, 60 ms per character other than a space, after a set delay:
    a test can tell from the audio a caller received, to the sample, whether
    all of a reply's audio arrived once (whatever the chunking of its text)."""

    name = "scripted-tts"

    def __init__(self, delay: float = 0.03, sample_rate: int = 16000) -> None:
        self.delay = delay
        self.sample_rate = sample_rate

    async def _synthesize(self, text: str, rate: float) -> bytes:
        await asyncio.sleep(self.delay)
        samples = int(self.sample_rate * 0.06 * len(text.replace(" ", "")) / rate)
        t = np.arange(samples) / self.sample_rate
        return (np.sin(2 * np.pi * 300 * t) * 8000).astype("<i2").tobytes()


def scripted_providers() -> Providers:
    return Providers(vad=EnergyVAD(), stt=ScriptedSTT(), llm=ScriptedLLM(), tts=ScriptedTTS())
