"""``voxfleet check-providers``: ask every provider of every chain once, as an
agent would configure them, and say what each answered and how fast. For a
release pipeline, or before pointing callers at a new region: it exits
non-zero when any provider failed."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np

from voxfleet.audio import INPUT_RATE, Float32Array, pcm16_to_float, resample
from voxfleet.errors import ProviderError
from voxfleet.providers.base import LLM, STT, TTS, Provider, Providers
from voxfleet.providers.chain import FallbackLLM, FallbackSTT, FallbackTTS
from voxfleet.providers.chat import ChatMessage, GenerationParams

SENTENCE = "Hello, this is a check."


@dataclass(slots=True, frozen=True)
class Outcome:
    kind: str
    provider: str
    ok: bool
    seconds: float
    detail: str  # what it answered, or why it failed


async def _timed(kind: str, provider: Provider, work: Callable[[], Awaitable[str]]) -> Outcome:
    started = time.perf_counter()
    try:
        detail = await work()
    except ProviderError as e:
        return Outcome(kind, provider.name, False, time.perf_counter() - started, e.message)
    return Outcome(kind, provider.name, True, time.perf_counter() - started, detail)


def _stts(stt: STT) -> list[STT]:
    return list(stt.members) if isinstance(stt, FallbackSTT) else [stt]


def _llms(llm: LLM) -> list[LLM]:
    return list(llm.members) if isinstance(llm, FallbackLLM) else [llm]


def _ttss(tts: TTS) -> list[TTS]:
    return list(tts.members) if isinstance(tts, FallbackTTS) else [tts]


async def check(providers: Providers) -> list[Outcome]:
    """One request to each provider of each chain: TTS first (its speech is
    what the STT then hears), then STT, then the LLM."""
    outcomes: list[Outcome] = []
    speech: Float32Array = np.zeros(INPUT_RATE, dtype=np.float32)
    for tts in _ttss(providers.tts):
        made: list[bytes] = []

        async def synthesize(tts: TTS = tts, made: list[bytes] = made) -> str:
            made.append(await tts.synthesize(SENTENCE))
            return f"{len(made[0]) / 2 / tts.sample_rate:.2f} s of audio at {tts.sample_rate} Hz"

        outcome = await _timed("tts", tts, synthesize)
        outcomes.append(outcome)
        if outcome.ok and not speech.any():
            speech = resample(pcm16_to_float(made[0]), tts.sample_rate, INPUT_RATE)
    for stt in _stts(providers.stt):

        async def transcribe(stt: STT = stt) -> str:
            return repr(await stt.transcribe(speech))

        outcomes.append(await _timed("stt", stt, transcribe))
    params = GenerationParams(temperature=0.0, top_p=1.0, max_tokens=8)
    messages = [ChatMessage("user", "Reply with the single word: ready.")]
    for llm in _llms(providers.llm):

        async def generate(llm: LLM = llm) -> str:
            pieces = [p async for p in llm.stream(messages, params) if isinstance(p, str)]
            return repr("".join(pieces).strip())

        outcomes.append(await _timed("llm", llm, generate))
    return outcomes


def report(outcomes: list[Outcome]) -> str:
    lines = []
    for o in outcomes:
        status = "ok  " if o.ok else "FAIL"
        lines.append(
            f"{status} {o.kind:<3} {o.provider:<24} {o.seconds * 1000:7.0f} ms  {o.detail}"
        )
    return "\n".join(lines)
