"""SmolLM2 on llama.cpp with continuous batching: every room's generation is a
sequence of ONE context (providers/local/rounds.py), and each job of the
model scheduler is a round that gives every room generating its next token in
one llama_decode, instead of one decode per room's token (llm.py). A room's
next turn takes the sequence holding the longest start of its prompt and
evaluates only the rest; a generation whose consumer goes away (barge-in)
leaves the next round."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Sequence
from contextlib import aclosing
from functools import partial

from voxfleet.providers.chat import ChatMessage, GenerationParams, Piece, ToolSpec, plain_messages
from voxfleet.providers.local import rounds
from voxfleet.providers.local.gguf import model_path
from voxfleet.providers.local.llm import (
    LOOKAHEAD,
    SmolLM,
    Step,
    ahead,
)
from voxfleet.providers.local.pool import ContextPool, Prompt
from voxfleet.providers.local.scheduler import ModelScheduler, scheduler
from voxfleet.providers.urgency import BACKGROUND, Urgency, current

BATCH = 256  # tokens of one round: prompt chunks of new generations, one per generating room


class BatchedLLM(SmolLM):
    pool: ContextPool[rounds.Sequence]

    def __init__(
        self,
        threads: int = 1,
        context: int = 2048,
        sequences: int = 4,
        models: ModelScheduler | None = None,
    ) -> None:
        self._models = models or scheduler()
        self.rounds = rounds.Rounds(model_path(), threads, context, max(1, sequences), BATCH)
        self.pool = ContextPool(self.rounds.sequences)

    async def prefill(self, messages: Sequence[ChatMessage]) -> None:
        """Evaluate the prompt so far into a free sequence, when the models have
        nothing else to do."""
        prompt = plain_messages(messages)

        def evaluate() -> None:
            sequence = self.pool.try_take(prompt, evict=False)
            if sequence is None:
                return
            evaluated = sequence.prompt
            try:
                self.rounds.prefill(sequence, self.rounds.tokenize(prompt))
                evaluated = prompt
            finally:
                self.pool.give_back(sequence, evaluated)

        await self._models.run(evaluate, BACKGROUND, lane=self.rounds, kind="llm")

    async def _stream(
        self, messages: Sequence[ChatMessage], params: GenerationParams, tools: Sequence[ToolSpec]
    ) -> AsyncGenerator[Piece, None]:
        prompt = plain_messages(messages)
        urgency = current()
        sequence = await self.pool.take(prompt)
        reply = _Reply(self.rounds, sequence, prompt, self.drawn(params, prompt), urgency)
        async with aclosing(ahead(partial(self._step, reply), partial(self._end, reply))) as pieces:
            async for piece in pieces:
                yield piece

    def _step(self, reply: _Reply) -> Step:
        """The reply's next piece, queued now (the rounds' lane keeps them in order)."""
        step = self._models.run(reply.step, reply.urgency, lane=self.rounds, kind="llm")
        return asyncio.ensure_future(step)

    def _end(self, reply: _Reply, pending: list[Step]) -> Awaitable[None]:
        """The consumer went away or the reply ended: it takes no part in the
        next round from now on; then ``_close``."""
        reply.leave()
        return self._close(reply, pending)

    async def _close(self, reply: _Reply, pending: list[Step]) -> None:
        """Take the generation out of the rounds (a round already running finishes)
        and free its sequence, whatever happens to the consumer meanwhile."""
        try:
            await asyncio.wait(pending)
            if reply.generation is not None:
                await self._models.run(reply.close, reply.urgency, lane=self.rounds, kind="llm")
        finally:
            self.pool.give_back(reply.sequence, reply.prompt)


class _Reply:
    """One reply's generation, started by its first step on the models' thread
    (so its prompt is tokenized there, not on the event loop)."""

    def __init__(
        self,
        engine: rounds.Rounds,
        sequence: rounds.Sequence,
        prompt: Prompt,
        params: GenerationParams,
        urgency: Urgency,
    ) -> None:
        self._engine = engine
        self.sequence = sequence
        self.prompt = prompt
        self._params = params
        self.urgency = urgency
        self.generation: rounds.Generation | None = None
        self._gone = False

    def step(self) -> str | None:
        if self._gone:
            return None
        if self.generation is None:
            tokens = self._engine.tokenize(self.prompt)
            self.generation = self._engine.start(self.sequence, tokens, self._params, self.urgency)
        return self._engine.next_piece(self.generation, LOOKAHEAD)

    def leave(self) -> None:
        """Its consumer went away: it takes no part in the next round."""
        self._gone = True
        if self.generation is not None:
            self.generation.gone = True

    def close(self) -> None:
        if self.generation is not None:
            self._engine.leave(self.generation)
