"""A seeded local LLM (VOXFLEET_LLM_SEED) gives the same conversation the same
reply, with the real SmolLM2 model at a temperature where draws vary; so
benchmark runs that compare CPU per call compare the same replies."""

from __future__ import annotations

import pytest

from voxfleet.providers.chat import ChatMessage, GenerationParams
from voxfleet.providers.local.batched import BatchedLLM
from voxfleet.providers.local.llm import LlamaLLM, SmolLM
from voxfleet.providers.local.scheduler import ModelScheduler

pytestmark = pytest.mark.integration

WARM = GenerationParams(temperature=1.2, top_p=1.0, max_tokens=24)
PROMPTS = [
    [ChatMessage("system", "You are Vox."), ChatMessage("user", f"Tell me about {topic}.")]
    for topic in ("rivers", "music", "the moon", "bread")
]


async def replies(llm: SmolLM) -> list[str]:
    return ["".join([str(p) async for p in llm.stream(prompt, WARM)]) for prompt in PROMPTS]


@pytest.mark.parametrize("kind", [LlamaLLM, BatchedLLM])
async def test_a_seeded_llm_gives_a_prompt_the_same_reply_every_time(kind: type[SmolLM]) -> None:
    llm = kind(1, 1024, 2, ModelScheduler(2))
    llm.seed = 7
    first, again = await replies(llm), await replies(llm)
    assert first == again
    assert len(set(first)) == len(first)  # the prompts' replies differ
    llm.seed = 8
    assert await replies(llm) != first  # another seed, other draws
