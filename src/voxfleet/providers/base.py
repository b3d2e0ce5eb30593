"""Base classes of the four provider kinds (VAD, STT, LLM, TTS).

A provider implements one underscore method and declares what it can do
(``Capabilities``). The base owns the rest, in one place (``_call``): a
deadline, retries with backoff for ``ProviderUnavailable`` only (a refused
connection, a 5xx, a 429: the same request may work a moment later), wrapping
library errors into ProviderError, the latency and error metrics, and telling
the caller's reply of each fault (``on_fault``: the reply apologises at once
instead of leaving the caller in silence). An LLM's deadline runs to its first
piece of output and is not restarted by bytes that carry none; a stream that
then stalls fails too. An LLM stream is retried only before its first piece:
after that a retry would say part of the reply twice (the fallback chain,
providers/chain.py, continues it instead)."""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Self, TypeVar

import numpy as np

from voxfleet.aio import Backoff
from voxfleet.audio import INPUT_RATE, Float32Array, pcm16_to_float, resample
from voxfleet.errors import ProviderError, ProviderTimeout, ProviderUnavailable
from voxfleet.observability.logging import get_logger
from voxfleet.observability.metrics import PROVIDER_SECONDS
from voxfleet.providers.chat import ChatMessage, GenerationParams, Piece, ToolSpec
from voxfleet.providers.faults import OnFault, ProviderFault, report

if TYPE_CHECKING:
    from voxfleet.settings import Settings

T = TypeVar("T")
log = get_logger(__name__)


@dataclass(slots=True, frozen=True)
class Capabilities:
    """What a provider can do; the pipeline and the registry read it."""

    streaming: bool = False  # results arrive piece by piece (tokens, audio)
    sample_rates: tuple[int, ...] = (INPUT_RATE,)  # audio it takes (VAD, STT) or makes (TTS)
    prompt_cache: bool = False  # an LLM that gains from prefill()
    tools: bool = False  # an LLM that can call tools


class Provider(ABC):
    kind: ClassVar[str]
    name: str = "provider"  # in metrics and logs; an endpoint's providers use its name
    model: str = ""  # the model it asks for, when it names one (in traces)
    capabilities: Capabilities = Capabilities()
    timeout: float = 15.0  # one attempt (an LLM: to its first piece)
    attempts: int = 3  # for ProviderUnavailable only

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        """The provider as the process's settings configure it."""
        return cls()

    async def close(self) -> None:
        """Release connections (a hosted provider's HTTP pool)."""
        return None

    async def _call(
        self,
        what: str,
        work: Callable[[], Awaitable[T]],
        on_fault: OnFault | None = None,
        timeout: float | None = None,
    ) -> T:
        """``work()`` under the deadline, retried while unavailable, measured."""
        backoff = Backoff(0.1, 1.0)
        deadline = self.timeout if timeout is None else timeout
        attempt = 0
        while True:
            attempt += 1
            started = time.perf_counter()
            try:
                async with asyncio.timeout(deadline):
                    result = await work()
            except TimeoutError as e:
                error: ProviderError = ProviderTimeout(f"{self.name}: {what} took over {deadline}s")
                error.__cause__ = e
            except ProviderError as e:
                error = e
            except Exception as e:  # the library's own errors, wrapped at this edge
                error = ProviderError(f"{self.name}: {what} failed: {e}")
                error.__cause__ = e
            else:
                PROVIDER_SECONDS.labels(self.kind, self.name).observe(time.perf_counter() - started)
                return result
            retrying = isinstance(error, ProviderUnavailable) and attempt < self.attempts
            report(on_fault, ProviderFault(self.kind, self.name, error, retrying))
            if not retrying:
                raise error
            await backoff.sleep()


class VADStream(ABC):
    """Voice activity of one audio stream, window by window (stateful)."""

    window: int  # samples per window at 16 kHz

    @abstractmethod
    def probability(self, window: Float32Array) -> float:
        """Speech probability of one window of ``self.window`` samples in [-1, 1]."""

    def skip(self, window: Float32Array) -> None:  # noqa: B027 - most streams keep nothing
        """``window`` goes by unheard (the caller is silent): keep whatever the
        next window's probability needs from it."""


class VAD(Provider):
    """Runs inline on the event loop (a window costs well under a millisecond),
    so it has no async call to guard."""

    kind = "vad"

    @abstractmethod
    def stream(self) -> VADStream:
        """A new detector for one audio stream; streams share the model."""


class STT(Provider):
    kind = "stt"
    per_audio_second: float = 0.0  # added to the deadline per second of speech

    async def transcribe(self, audio: Float32Array, on_fault: OnFault | None = None) -> str:
        """Text of ``audio`` (16 kHz mono float32 in [-1, 1])."""
        deadline = self.timeout + self.per_audio_second * len(audio) / INPUT_RATE
        text = await self._call(
            "transcription", lambda: self._transcribe(audio), on_fault, deadline
        )
        return text.strip()

    @abstractmethod
    async def _transcribe(self, audio: Float32Array) -> str: ...


class LLM(Provider):
    kind = "llm"
    capabilities = Capabilities(streaming=True)
    timeout = 10.0  # to the first piece of output
    stall_timeout = 10.0  # between pieces, once it has started

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        params: GenerationParams,
        tools: Sequence[ToolSpec] = (),
        on_fault: OnFault | None = None,
    ) -> AsyncIterator[Piece]:
        """The reply as it is generated: text pieces, and the tools it calls (offered
        only to a provider that can call them). Closing the iterator (or cancelling
        its consumer) stops generation."""
        offered = tools if self.capabilities.tools else ()
        current: list[AsyncGenerator[Piece, None]] = []  # the attempt's stream

        async def first() -> Piece | None:
            if current:  # a retry: the failed stream is done
                await current.pop().aclose()
            current.append(self._stream(messages, params, offered))
            try:
                return await anext(current[0])
            except StopAsyncIteration:
                return None

        try:
            piece = await self._call("the first token", first, on_fault)
            while piece is not None:
                yield piece
                try:
                    async with asyncio.timeout(self.stall_timeout):
                        piece = await anext(current[0])
                except StopAsyncIteration:
                    return
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    error = _broken(self.name, e, self.stall_timeout)
                    report(on_fault, ProviderFault(self.kind, self.name, error, retrying=False))
                    raise error from e
        finally:
            for pieces in current:
                await pieces.aclose()

    @abstractmethod
    def _stream(
        self, messages: Sequence[ChatMessage], params: GenerationParams, tools: Sequence[ToolSpec]
    ) -> AsyncGenerator[Piece, None]: ...

    async def prefill(self, messages: Sequence[ChatMessage]) -> None:
        """Hint that a prompt starting with ``messages`` comes next, so a provider
        with a prompt cache can evaluate it now, off the caller's critical path."""
        return None

    def release(self, messages: Sequence[ChatMessage]) -> None:
        """Hint that the conversation whose prompt is ``messages`` is over here
        (its room ended or moved away), so a provider with a prompt cache can
        give its space to another conversation first."""
        return None


def _broken(name: str, error: Exception, stall: float) -> ProviderError:
    """What a stream that failed after its first piece raises."""
    if isinstance(error, ProviderError):
        return error
    if isinstance(error, TimeoutError):
        return ProviderTimeout(f"{name}: the stream stalled for {stall}s")
    return ProviderError(f"{name}: the stream broke: {error}")


class TTS(Provider):
    kind = "tts"
    sample_rate: int = 22050

    async def synthesize(
        self, text: str, rate: float = 1.0, on_fault: OnFault | None = None
    ) -> bytes:
        """PCM16LE mono audio of ``text`` at ``self.sample_rate``. Audio that is
        empty or silent is a fault: the caller would hear nothing."""

        async def work() -> bytes:
            pcm = await self._synthesize(text, rate)
            if not audible(pcm):
                raise ProviderError(f"{self.name}: no audible audio for {text[:40]!r}")
            return pcm

        return await self._call("synthesis", work, on_fault)

    @abstractmethod
    async def _synthesize(self, text: str, rate: float) -> bytes: ...


def audible(pcm: bytes) -> bool:
    """Whether PCM16LE audio has a sample louder than -50 dBFS."""
    samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2")
    return bool(len(samples)) and int(np.max(np.abs(samples.astype(np.int32)))) > 100


@dataclass(slots=True)
class Providers:
    """The providers one agent process uses, one per capability, loaded once."""

    vad: VAD
    stt: STT
    llm: LLM
    tts: TTS
    canned: dict[str, bytes] = field(default_factory=dict)  # text -> its audio, made once
    # A fixed line's audio (a profile's greeting), by (text, speaking rate): made
    # at its first call and reused, since every call of a profile says it.
    lines: dict[tuple[str, float], bytes] = field(default_factory=dict)

    async def prepare_phrases(self, texts: Iterable[str]) -> None:
        """Synthesize what the agent says when providers fail (apologies), now,
        so saying it needs no provider. One that cannot be made is logged and
        left out: the reply then only shows it as text."""
        for text in sorted(set(texts) - set(self.canned)):
            try:
                self.canned[text] = await self.tts.synthesize(text)
            except ProviderError as e:
                log.error("phrase not synthesized", text=text, error=e.message)

    async def close(self) -> None:
        for provider in (self.vad, self.stt, self.llm, self.tts):
            await provider.close()

    async def warm_up(self) -> None:
        """Run each model once so the first caller does not pay for lazy init.
        The STT hears real speech: on silence Whisper can loop for seconds. A
        provider that fails here is logged, not fatal: an agent starts while a
        hosted endpoint is down, and its chain falls back."""
        stream = self.vad.stream()
        stream.probability(np.zeros(stream.window, dtype=np.float32))
        params = GenerationParams(temperature=0.0, top_p=1.0, max_tokens=2)
        try:
            pcm = await self.tts.synthesize("Hello there.")
            speech = resample(pcm16_to_float(pcm), self.tts.sample_rate, INPUT_RATE)
            await self.stt.transcribe(speech)
            async for _ in self.llm.stream([ChatMessage("user", "Hi")], params):
                pass
        except ProviderError as e:
            log.error("warm-up failed", code=e.code, error=e.message)
