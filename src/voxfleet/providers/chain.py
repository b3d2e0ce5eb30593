"""Fallback chains: one capability served by several providers in order (for
example Azure in one region, Azure in another, the local models), each behind
a circuit breaker (providers/breaker.py).

A request goes to the first provider whose breaker lets it through; when that
provider fails (its deadline passed, it answered 5xx or 429 past its retries,
its stream broke, its audio was silent) the chain moves to the next, counting
``voxfleet_provider_fallbacks_total`` and logging it with the call id. An LLM
whose stream broke after it had said something is not asked again from the
start: the next provider gets what was said and is asked to continue it, so
the caller does not hear the beginning twice. When every breaker is open the
chain still tries them all, in order: a call is better served late than not.

A chain is itself a provider of its capability, so the pipeline does not know
whether it talks to one provider or five."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Generic, TypeVar

from voxfleet.audio import Float32Array, float_to_pcm16, pcm16_to_float, resample
from voxfleet.errors import ProviderError
from voxfleet.observability.logging import get_logger
from voxfleet.observability.metrics import PROVIDER_FALLBACKS
from voxfleet.providers.base import LLM, STT, TTS, Capabilities, Provider
from voxfleet.providers.breaker import Breaker
from voxfleet.providers.chat import ChatMessage, GenerationParams, Piece, ToolSpec
from voxfleet.providers.faults import OnFault

log = get_logger(__name__)

P = TypeVar("P", bound=Provider)
T = TypeVar("T")

CONTINUE = (
    "(Your answer above was cut off. Continue it from exactly where it stopped, "
    "without repeating any of it.)"
)


class _Members(Generic[P]):
    def __init__(self, kind: str, members: Sequence[P], failures: int, cooldown: float) -> None:
        if not members:
            raise ValueError(f"{kind}: a fallback chain needs at least one provider")
        self.kind = kind
        self.members = [(m, Breaker(kind, m.name, failures, cooldown)) for m in members]

    def order(self) -> Iterator[tuple[P, Breaker]]:
        """The members to try, in order: those whose breaker allows a request,
        or, when none does, all of them."""
        tried = False
        for member, breaker in self.members:
            if breaker.allow():
                tried = True
                yield member, breaker
        if not tried:
            yield from self.members

    @property
    def providers(self) -> list[P]:
        return [member for member, _ in self.members]

    async def first(self, ask: Callable[[P], Awaitable[T]]) -> tuple[P, T]:
        """The first answer to ``ask`` along the chain, and who gave it."""
        error: ProviderError = ProviderError(f"{self.kind}: no provider of the chain answered")
        for member, breaker in self.order():
            try:
                answer = await ask(member)
            except ProviderError as e:
                breaker.failed()
                self.fell_back(member, e)
                error = e
                continue
            except asyncio.CancelledError:
                breaker.abandoned()
                raise
            breaker.succeeded()
            return member, answer
        raise error

    def fell_back(self, failed: P, error: ProviderError) -> None:
        names = [m.name for m, _ in self.members]
        after = names.index(failed.name) + 1
        to = names[after] if after < len(names) else "none"
        PROVIDER_FALLBACKS.labels(self.kind, failed.name, to).inc()
        log.warning(
            "provider fallback",
            kind=self.kind,
            from_provider=failed.name,
            to_provider=to,
            code=error.code,
        )


async def _close_all(providers: Sequence[Provider]) -> None:
    for provider in providers:
        await provider.close()


def _joined(said: list[str], piece: str) -> str:
    """The first piece of a continuation, spaced from what was said before it."""
    before = "".join(said)
    if before and not before[-1].isspace() and piece[0].isalnum():
        return " " + piece
    return piece


class FallbackSTT(STT):
    name = "chain"

    def __init__(self, members: Sequence[STT], failures: int = 3, cooldown: float = 10.0) -> None:
        self._chain = _Members("stt", members, failures, cooldown)
        self.name = "+".join(m.name for m in members)
        self.members = self._chain.providers

    async def close(self) -> None:
        await _close_all(self.members)

    async def transcribe(self, audio: Float32Array, on_fault: OnFault | None = None) -> str:
        _member, text = await self._chain.first(lambda m: m.transcribe(audio, on_fault))
        return text

    async def _transcribe(self, audio: Float32Array) -> str:
        raise NotImplementedError("a chain is asked through transcribe()")


class FallbackTTS(TTS):
    """Audio of every member comes out at the first member's sample rate."""

    name = "chain"

    def __init__(self, members: Sequence[TTS], failures: int = 3, cooldown: float = 10.0) -> None:
        self._chain = _Members("tts", members, failures, cooldown)
        self.name = "+".join(m.name for m in members)
        self.members = self._chain.providers
        self.sample_rate = members[0].sample_rate

    async def close(self) -> None:
        await _close_all(self.members)

    async def synthesize(
        self, text: str, rate: float = 1.0, on_fault: OnFault | None = None
    ) -> bytes:
        member, pcm = await self._chain.first(lambda m: m.synthesize(text, rate, on_fault))
        if member.sample_rate == self.sample_rate:
            return pcm
        return float_to_pcm16(resample(pcm16_to_float(pcm), member.sample_rate, self.sample_rate))

    async def _synthesize(self, text: str, rate: float) -> bytes:
        raise NotImplementedError("a chain is asked through synthesize()")


class FallbackLLM(LLM):
    name = "chain"

    def __init__(self, members: Sequence[LLM], failures: int = 3, cooldown: float = 10.0) -> None:
        self._chain = _Members("llm", members, failures, cooldown)
        self.name = "+".join(m.name for m in members)
        self.model = "+".join(m.model for m in members if m.model)
        self.members = self._chain.providers
        first = members[0].capabilities
        self.capabilities = Capabilities(
            streaming=True,
            prompt_cache=first.prompt_cache,
            tools=any(m.capabilities.tools for m in members),
        )

    async def close(self) -> None:
        await _close_all(self.members)

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        params: GenerationParams,
        tools: Sequence[ToolSpec] = (),
        on_fault: OnFault | None = None,
    ) -> AsyncIterator[Piece]:
        said: list[str] = []  # text already handed on: the next member continues it
        error = ProviderError(f"{self.kind}: no provider of the chain answered")
        for member, breaker in self._chain.order():
            prompt: Sequence[ChatMessage] = messages
            if said:
                prompt = [
                    *messages,
                    ChatMessage("assistant", "".join(said)),
                    ChatMessage("user", CONTINUE),
                ]
            answered = False
            answered_text = False
            try:
                async for piece in member.stream(prompt, params, tools, on_fault):
                    if not answered:
                        answered = True
                        breaker.succeeded()
                    if isinstance(piece, str):
                        text = piece
                        if prompt is not messages and not answered_text and piece:
                            text = _joined(said, piece)
                            answered_text = True
                        said.append(text)
                        yield text
                    else:
                        yield piece
            except ProviderError as e:
                breaker.failed()
                self._chain.fell_back(member, e)
                error = e
                continue
            except (asyncio.CancelledError, GeneratorExit):
                breaker.abandoned()
                raise
            if not answered:
                breaker.succeeded()  # it answered, with nothing to say
            return
        raise error

    def _stream(
        self, messages: Sequence[ChatMessage], params: GenerationParams, tools: Sequence[ToolSpec]
    ) -> AsyncGenerator[Piece, None]:
        raise NotImplementedError("a chain is asked through stream()")

    async def prefill(self, messages: Sequence[ChatMessage]) -> None:
        for member, breaker in self._chain.members:
            if breaker.state == "closed":
                await member.prefill(messages)
                return

    def release(self, messages: Sequence[ChatMessage]) -> None:
        for member, _breaker in self._chain.members:
            member.release(messages)
