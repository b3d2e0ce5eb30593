"""The local LLM keeps a conversation's evaluated prompt when the history
window steps past old turns (providers/local/kv_shift.py), with the real
SmolLM2 model: the next turn evaluates only its new tokens, and the context's
cache then holds exactly the prompt's tokens. (Its reply may differ from a
context that evaluated the window afresh: the kept turns were evaluated while
they could see the dropped ones, llama.cpp's own context-shift approximation.)"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from voxfleet.providers.chat import ChatMessage, GenerationParams, plain_messages
from voxfleet.providers.local.kv_shift import MIN_KEPT, shift_to
from voxfleet.providers.local.llm import MIN_PREFILL, LlamaLLM
from voxfleet.providers.local.pool import Slot
from voxfleet.providers.local.scheduler import ModelScheduler

pytestmark = pytest.mark.integration

GREEDY = GenerationParams(temperature=0.0, top_p=1.0, max_tokens=24, repeat_penalty=1.1)
SYSTEM = ChatMessage(
    "system", "You are a helpful assistant named Vox. Reply in one short sentence."
)
HISTORY = [
    ChatMessage("assistant", "Hi, I'm Vox. How can I help you today?"),
    ChatMessage("user", "What is the capital of France?"),
    ChatMessage("assistant", "The capital of France is Paris."),
    ChatMessage("user", "Can you tell me a joke?"),
    ChatMessage("assistant", "Why did the chicken cross the road? To get to the other side."),
    ChatMessage("user", "What time do you open tomorrow?"),
    ChatMessage("assistant", "We open at nine in the morning."),
]
QUESTION = ChatMessage("user", "How many days are in a week?")


@pytest.fixture(scope="module")
def models() -> ModelScheduler:
    return ModelScheduler(2)


def counting(llm: LlamaLLM) -> list[int]:
    """Tokens each llama.cpp eval of ``llm``'s only context is given."""
    (context,) = llm.pool._contexts
    evals: list[int] = []
    original = context.llama.eval

    def eval_(tokens: list[int]) -> None:
        evals.append(len(tokens))
        original(tokens)

    context.llama.eval = eval_
    return evals


async def reply(llm: LlamaLLM, messages: list[ChatMessage]) -> str:
    return "".join([str(piece) async for piece in llm.stream(messages, GREEDY)])


@pytest.fixture(scope="module")
def kept(models: ModelScheduler) -> Iterator[LlamaLLM]:
    yield LlamaLLM(sequences=1, models=models)


async def test_a_window_step_evaluates_only_the_new_turn(
    kept: LlamaLLM, models: ModelScheduler
) -> None:
    await kept.prefill([SYSTEM, *HISTORY])
    evals = counting(kept)
    stepped = [SYSTEM, *HISTORY[3:], QUESTION]  # the window moved past three turns
    said = await reply(kept, stepped)
    prompt_tokens = sum(n for n in evals if n > 1)
    assert 0 < prompt_tokens <= 30  # the question's turn, not the ~90-token window
    assert said.strip()
    (context,) = kept.pool._contexts
    tokens = context._tokens(context.llama, plain_messages(stepped))
    assert tokens is not None
    assert context.llama.input_ids[: len(tokens)].tolist() == tokens

    fresh = LlamaLLM(sequences=1, models=models)
    fresh_evals = counting(fresh)
    assert (await reply(fresh, stepped)).strip()
    assert sum(n for n in fresh_evals if n > 1) > 3 * prompt_tokens


def test_nothing_is_shifted_without_a_long_enough_run_past_a_gap(kept: LlamaLLM) -> None:
    (context,) = kept.pool._contexts
    llama = context.llama
    cached = llama.input_ids[: llama.n_tokens].tolist()
    assert len(cached) > 2 * MIN_KEPT
    assert shift_to(llama, cached[:10] + [cached[11]] * MIN_KEPT) == 0  # no such run
    assert shift_to(llama, cached[:10] + cached[12 : 12 + MIN_KEPT - 1]) == 0  # too short
    assert shift_to(llama, [*cached, 1, 2]) == 0  # a plain continuation
    assert llama.input_ids[: llama.n_tokens].tolist() == cached


def test_a_room_finds_its_own_context_again_after_its_window_stepped() -> None:
    def prompt(*texts: str) -> list[dict[str, str]]:
        return [{"role": "user", "content": t} for t in texts]

    own, other = Slot(), Slot()
    own.prompt = prompt("system", "hi", "q1", "a1", "q2", "a2")
    other.prompt = prompt("system", "hi", "q9", "a9")
    stepped = prompt("system", "q2", "a2", "q3")  # the window moved past hi, q1, a1
    assert own.shared(stepped) > other.shared(stepped) > 0
    assert own.shared(prompt("system", "hi", "q1", "a1", "q2", "a2", "q3")) > own.shared(stepped)


async def test_a_prefill_leaves_the_replys_turn_to_it_and_a_few_tokens_to_the_reply(
    models: ModelScheduler,
) -> None:
    llm = LlamaLLM(sequences=1, models=models)
    evals = counting(llm)
    await llm.prefill([SYSTEM, *HISTORY[:3]])  # a fresh context: its messages
    (context,) = llm.pool._contexts
    messages = context._messages(context.llama, plain_messages([SYSTEM, *HISTORY[:3]]))
    assert messages is not None and evals == [len(messages)]
    # not the start of an assistant turn: the next prompt has a user's turn there
    assert context.llama.input_ids[: context.llama.n_tokens].tolist() == messages

    asked = [SYSTEM, *HISTORY[:3], HISTORY[3]]
    said = await reply(llm, asked)
    turn = context._tokens(context.llama, plain_messages(asked))
    assert turn is not None
    assert evals[1] == len(turn) - len(messages) < 20  # the user's turn only

    evals.clear()
    await llm.prefill([*asked, ChatMessage("assistant", said)])
    assert evals == []  # only the reply's end marker was missing: fewer than MIN_PREFILL
    assert MIN_PREFILL > 2
    await reply(llm, [*asked, ChatMessage("assistant", said), HISTORY[5]])
    assert 0 < evals[0] < 40  # its turn (and any of the reply its text tokenizes otherwise)
