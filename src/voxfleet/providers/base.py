"""Base classes of the four provider kinds.

The base owns what every provider needs (timeouts, wrapping library errors into
ProviderError, metrics); a provider implements one underscore method."""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass

import numpy as np

from voxfleet.audio import INPUT_RATE, Float32Array, pcm16_to_float, resample
from voxfleet.errors import ProviderError, ProviderTimeout
from voxfleet.observability.metrics import PROVIDER_ERRORS, PROVIDER_SECONDS


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


class VADStream(ABC):
    """Voice activity of one audio stream, window by window (stateful)."""

    window: int  # samples per window at 16 kHz

    @abstractmethod
    def probability(self, window: Float32Array) -> float:
        """Speech probability of one window of ``self.window`` samples in [-1, 1]."""


class VAD(ABC):
    name: str = "vad"

    @abstractmethod
    def stream(self) -> VADStream:
        """A new detector for one audio stream; streams share the model."""


class STT(ABC):
    name: str = "stt"
    timeout: float = 15.0

    async def transcribe(self, audio: Float32Array) -> str:
        """Text of ``audio`` (16 kHz mono float32 in [-1, 1])."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                text = await self._transcribe(audio)
        except TimeoutError as e:
            PROVIDER_ERRORS.labels("stt", self.name).inc()
            raise ProviderTimeout(f"{self.name}: transcription took over {self.timeout}s") from e
        except ProviderError:
            PROVIDER_ERRORS.labels("stt", self.name).inc()
            raise
        except Exception as e:
            PROVIDER_ERRORS.labels("stt", self.name).inc()
            raise ProviderError(f"{self.name}: transcription failed: {e}") from e
        PROVIDER_SECONDS.labels("stt", self.name).observe(time.perf_counter() - started)
        return text.strip()

    @abstractmethod
    async def _transcribe(self, audio: Float32Array) -> str: ...


class LLM(ABC):
    name: str = "llm"
    first_token_timeout: float = 10.0

    async def stream(
        self, messages: Sequence[ChatMessage], params: GenerationParams
    ) -> AsyncIterator[str]:
        """Text pieces of the reply as they are generated. Closing the iterator
        (or cancelling its consumer) stops generation."""
        started = time.perf_counter()
        pieces = self._stream(messages, params)
        try:
            first = True
            while True:
                try:
                    if first:
                        async with asyncio.timeout(self.first_token_timeout):
                            piece = await anext(pieces)
                        PROVIDER_SECONDS.labels("llm_first_token", self.name).observe(
                            time.perf_counter() - started
                        )
                        first = False
                    else:
                        piece = await anext(pieces)
                except StopAsyncIteration:
                    return
                yield piece
        except TimeoutError as e:
            PROVIDER_ERRORS.labels("llm", self.name).inc()
            raise ProviderTimeout(
                f"{self.name}: no token within {self.first_token_timeout}s"
            ) from e
        except (ProviderError, asyncio.CancelledError, GeneratorExit):
            raise
        except Exception as e:
            PROVIDER_ERRORS.labels("llm", self.name).inc()
            raise ProviderError(f"{self.name}: generation failed: {e}") from e
        finally:
            await pieces.aclose()

    @abstractmethod
    def _stream(
        self, messages: Sequence[ChatMessage], params: GenerationParams
    ) -> AsyncGenerator[str, None]: ...

    async def prefill(self, messages: Sequence[ChatMessage]) -> None:
        """Hint that a prompt starting with ``messages`` comes next, so a provider
        with a prompt cache can evaluate it now, off the caller's critical path."""
        return None


class TTS(ABC):
    name: str = "tts"
    sample_rate: int = 22050
    timeout: float = 15.0

    async def synthesize(self, text: str, rate: float = 1.0) -> bytes:
        """PCM16LE mono audio of ``text`` at ``self.sample_rate``."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                pcm = await self._synthesize(text, rate)
        except TimeoutError as e:
            PROVIDER_ERRORS.labels("tts", self.name).inc()
            raise ProviderTimeout(f"{self.name}: synthesis took over {self.timeout}s") from e
        except ProviderError:
            PROVIDER_ERRORS.labels("tts", self.name).inc()
            raise
        except Exception as e:
            PROVIDER_ERRORS.labels("tts", self.name).inc()
            raise ProviderError(f"{self.name}: synthesis failed: {e}") from e
        PROVIDER_SECONDS.labels("tts", self.name).observe(time.perf_counter() - started)
        return pcm

    @abstractmethod
    async def _synthesize(self, text: str, rate: float) -> bytes: ...


@dataclass(slots=True)
class Providers:
    """The set of providers one agent process uses, loaded once at start-up."""

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
