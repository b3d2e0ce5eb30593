"""The continuously batched local LLM with the real SmolLM2 model: rooms
generating together say what each would alone, a room's next turn evaluates
only its new tokens, and a generation its consumer leaves frees its sequence."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from voxfleet.providers.chat import ChatMessage, GenerationParams, plain_messages
from voxfleet.providers.local.batched import BatchedLLM
from voxfleet.providers.local.scheduler import ModelScheduler

pytestmark = pytest.mark.integration

GREEDY = GenerationParams(temperature=0.0, top_p=1.0, max_tokens=24, repeat_penalty=1.1)
SYSTEM = ChatMessage("system", "You are a helpful voice assistant. Answer in one sentence.")


@pytest.fixture(scope="module")
def llm() -> Iterator[BatchedLLM]:
    yield BatchedLLM(context=1024, sequences=2, models=ModelScheduler(2))


async def pieces(llm: BatchedLLM, messages: list[ChatMessage]) -> list[str]:
    return [str(piece) async for piece in llm.stream(messages, GREEDY)]


async def reply(llm: BatchedLLM, messages: list[ChatMessage]) -> str:
    return "".join(await pieces(llm, messages))


async def test_generations_together_say_what_each_says_alone(llm: BatchedLLM) -> None:
    first = [SYSTEM, ChatMessage("user", "What is the capital of France?")]
    second = [SYSTEM, ChatMessage("user", "How do bees make honey?")]
    alone = [await pieces(llm, first), await pieces(llm, second)]
    rounds = llm.rounds.rounds
    together = await asyncio.gather(pieces(llm, first), pieces(llm, second))
    assert list(together) == alone
    assert alone[0] != alone[1] and all(alone)
    # Their tokens shared rounds: fewer decodes than tokens.
    assert llm.rounds.rounds - rounds < len(alone[0]) + len(alone[1])


async def test_next_turn_evaluates_only_its_new_tokens(llm: BatchedLLM) -> None:
    turn = [SYSTEM, ChatMessage("user", "Name a colour.")]
    said = await reply(llm, turn)
    nxt = [*turn, ChatMessage("assistant", said), ChatMessage("user", "And another one?")]
    before = llm.rounds.evaluated
    await reply(llm, nxt)
    evaluated = llm.rounds.evaluated - before
    first = llm.rounds.tokenize(plain_messages(turn))
    whole = llm.rounds.tokenize(plain_messages(nxt))
    assert whole[: len(first)] == first
    assert 0 < evaluated <= len(whole) - len(first)


async def test_a_generation_left_frees_its_sequence(llm: BatchedLLM) -> None:
    long = GenerationParams(temperature=0.0, top_p=1.0, max_tokens=500, repeat_penalty=1.1)
    pieces = llm.stream([SYSTEM, ChatMessage("user", "Tell me a long story.")], long)
    first = await anext(pieces)
    assert first
    await pieces.aclose()
    assert not llm.rounds.active
    assert not any(sequence.busy for sequence in llm.rounds.sequences)
