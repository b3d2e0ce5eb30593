"""Base classes of the four provider kinds (VAD, STT, LLM, TTS).

A provider implements one underscore method and declares what it can do
(``Capabilities``). The base owns the rest, in one place (``_call``): a
deadline, retries with backoff for ``ProviderUnavailable`` only (a refused
connection, a 5xx, a 429: the same request may work a moment later), wrapping
library errors into ProviderError, and the latency and error metrics. An LLM
stream is retried only before its first token: after that a retry would say
part of the reply twice."""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Self, TypeVar

import numpy as np

from voxfleet.aio import Backoff
from voxfleet.audio import INPUT_RATE, Float32Array, pcm16_to_float, resample
from voxfleet.errors import ProviderError, ProviderTimeout, ProviderUnavailable
from voxfleet.observability.metrics import PROVIDER_ERRORS, PROVIDER_SECONDS

if TYPE_CHECKING:
    from voxfleet.settings import Settings

T = TypeVar("T")


@dataclass(slots=True, frozen=True)
class Capabilities:
    """What a provider can do; the pipeline and the registry read it."""

    streaming: bool = False  # results arrive piece by piece (tokens, audio)
    sample_rates: tuple[int, ...] = (INPUT_RATE,)  # audio it takes (VAD, STT) or makes (TTS)
    prompt_cache: bool = False  # an LLM that gains from prefill()


@dataclass(slots=True, frozen=True)
class ChatMessage:
    role: str  # "system" | "user" | "assistant"
    content: str


@dataclass(slots=True, frozen=True)
class GenerationParams:
    temperature: float
    top_p: float
    max_tokens: int
    repeat_penalty: float = 1.0


class Provider(ABC):
    kind: ClassVar[str]
    name: ClassVar[str] = "provider"
    capabilities: ClassVar[Capabilities] = Capabilities()
    timeout: float = 15.0  # one attempt
    attempts: int = 3  # for ProviderUnavailable only

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        """The provider as the process's settings configure it."""
        return cls()

    async def _call(self, what: str, work: Callable[[], Awaitable[T]]) -> T:
        """``work()`` under the deadline, retried while unavailable, measured."""
        backoff = Backoff(0.1, 1.0)
        attempt = 0
        while True:
            attempt += 1
            started = time.perf_counter()
            try:
                async with asyncio.timeout(self.timeout):
                    result = await work()
            except TimeoutError as e:
                error: ProviderError = ProviderTimeout(
                    f"{self.name}: {what} took over {self.timeout}s"
                )
                error.__cause__ = e
            except ProviderError as e:
                error = e
            except Exception as e:  # the library's own errors, wrapped at this edge
                error = ProviderError(f"{self.name}: {what} failed: {e}")
                error.__cause__ = e
            else:
                PROVIDER_SECONDS.labels(self.kind, self.name).observe(time.perf_counter() - started)
                return result
            PROVIDER_ERRORS.labels(self.kind, self.name).inc()
            if not isinstance(error, ProviderUnavailable) or attempt >= self.attempts:
                raise error
            await backoff.sleep()


class VADStream(ABC):
    """Voice activity of one audio stream, window by window (stateful)."""

    window: int  # samples per window at 16 kHz

    @abstractmethod
    def probability(self, window: Float32Array) -> float:
        """Speech probability of one window of ``self.window`` samples in [-1, 1]."""


class VAD(Provider):
    """Runs inline on the event loop (a window costs well under a millisecond),
    so it has no async call to guard."""

    kind = "vad"

    @abstractmethod
    def stream(self) -> VADStream:
        """A new detector for one audio stream; streams share the model."""


class STT(Provider):
    kind = "stt"

    async def transcribe(self, audio: Float32Array) -> str:
        """Text of ``audio`` (16 kHz mono float32 in [-1, 1])."""
        text = await self._call("transcription", lambda: self._transcribe(audio))
        return text.strip()

    @abstractmethod
    async def _transcribe(self, audio: Float32Array) -> str: ...


class LLM(Provider):
    kind = "llm"
    capabilities = Capabilities(streaming=True)
    timeout = 10.0  # to the first token

    async def stream(
        self, messages: Sequence[ChatMessage], params: GenerationParams
    ) -> AsyncIterator[str]:
        """Text pieces of the reply as they are generated. Closing the iterator
        (or cancelling its consumer) stops generation."""
        current: list[AsyncGenerator[str, None]] = []  # the attempt's stream

        async def first() -> str | None:
            if current:  # a retry: the failed stream is done
                await current.pop().aclose()
            current.append(self._stream(messages, params))
            try:
                return await anext(current[0])
            except StopAsyncIteration:
                return None

        try:
            piece = await self._call("the first token", first)
            while piece is not None:
                yield piece
                try:
                    piece = await anext(current[0])
                except StopAsyncIteration:
                    return
                except (ProviderError, asyncio.CancelledError):
                    raise
                except Exception as e:
                    PROVIDER_ERRORS.labels(self.kind, self.name).inc()
                    raise ProviderError(f"{self.name}: generation failed: {e}") from e
        finally:
            for pieces in current:
                await pieces.aclose()

    @abstractmethod
    def _stream(
        self, messages: Sequence[ChatMessage], params: GenerationParams
    ) -> AsyncGenerator[str, None]: ...

    async def prefill(self, messages: Sequence[ChatMessage]) -> None:
        """Hint that a prompt starting with ``messages`` comes next, so a provider
        with a prompt cache can evaluate it now, off the caller's critical path."""
        return None


class TTS(Provider):
    kind = "tts"
    sample_rate: int = 22050

    async def synthesize(self, text: str, rate: float = 1.0) -> bytes:
        """PCM16LE mono audio of ``text`` at ``self.sample_rate``."""
        return await self._call("synthesis", lambda: self._synthesize(text, rate))

    @abstractmethod
    async def _synthesize(self, text: str, rate: float) -> bytes: ...


@dataclass(slots=True)
class Providers:
    """The providers one agent process uses, one per capability, loaded once."""

    vad: VAD
    stt: STT
    llm: LLM
    tts: TTS

    async def warm_up(self) -> None:
        """Run each model once so the first caller does not pay for lazy init.
        The STT hears real speech: on silence Whisper can loop for seconds."""
        stream = self.vad.stream()
        stream.probability(np.zeros(stream.window, dtype=np.float32))
        pcm = await self.tts.synthesize("Hello there.")
        speech = resample(pcm16_to_float(pcm), self.tts.sample_rate, INPUT_RATE)
        await self.stt.transcribe(speech)
        params = GenerationParams(temperature=0.0, top_p=1.0, max_tokens=2)
        async for _ in self.llm.stream([ChatMessage("user", "Hi")], params):
            pass
