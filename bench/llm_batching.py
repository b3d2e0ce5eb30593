"""The local LLM alone: one llama.cpp context per room stepped one token per
job (llm.py) against one context stepping every room's token in one decode
(batched.py), for 1 and N rooms generating at once; each on its own
scheduler with one worker per core, as in an agent. Prompts are evaluated
once before the measured pass, so this measures decoding. ``--decode``
measures one llama_decode alone: the next token of 1, 2, 4 and 8 sequences
at once, and 8 tokens of one sequence.

    python bench/llm_batching.py [--rooms 1,4] [--tokens 64] [--repeat 2]
    python bench/llm_batching.py --decode
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine
from voxfleet.providers.base import LLM
from voxfleet.providers.chat import ChatMessage, GenerationParams
from voxfleet.providers.local.batched import BatchedLLM
from voxfleet.providers.local.gguf import model_path
from voxfleet.providers.local.llm import LlamaLLM
from voxfleet.providers.local.rounds import Rounds
from voxfleet.providers.local.scheduler import ModelScheduler

QUESTIONS = [
    "Tell me about dogs.",
    "How do I bake bread?",
    "Why is the sky blue?",
    "What should I pack for a beach holiday?",
    "How do trains work?",
    "What is a good way to learn French?",
    "Describe the city of Rome.",
    "How do bees make honey?",
]


def conversation(question: str) -> list[ChatMessage]:
    return [
        ChatMessage("system", "You are a helpful voice assistant. Answer in a few sentences."),
        ChatMessage("user", question),
    ]


async def generate(llm: LLM, question: str, tokens: int) -> int:
    # No end-of-turn before max_tokens at this temperature is not guaranteed: count pieces.
    params = GenerationParams(temperature=0.0, top_p=0.9, max_tokens=tokens, repeat_penalty=1.1)
    return sum([1 async for _ in llm.stream(conversation(question), params)])


async def measure(llm: LLM, rooms: int, tokens: int) -> dict[str, float]:
    questions = QUESTIONS[:rooms]
    await asyncio.gather(*(generate(llm, q, 1) for q in questions))  # prompts evaluated
    wall, cpu = time.perf_counter(), time.process_time()
    pieces = sum(await asyncio.gather(*(generate(llm, q, tokens) for q in questions)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "tokens": pieces,
        "tokens_per_second": round(pieces / wall, 1),
        "cpu_ms_per_token": round(1000 * cpu / pieces, 2),
        "wall_seconds": round(wall, 2),
    }


def decode_costs(repeat: int = 30) -> list[dict[str, Any]]:
    """Milliseconds (wall and CPU) of one llama_decode, by the tokens in it."""
    engine = Rounds(model_path(), threads=1, context=1024, sequences=8, batch=256)
    prompt = engine.tokenize([{"role": "user", "content": QUESTIONS[0]}])
    for sequence in engine.sequences:
        engine.prefill(sequence, prompt)
    shapes = [
        ("sequences", n, [(s, [42], True) for s in engine.sequences[:n]]) for n in (1, 2, 4, 8)
    ]
    shapes.append(("tokens of one sequence", 8, [(engine.sequences[0], [42] * 8, True)]))
    costs = []
    for what, n, work in shapes:
        wall, cpu = time.perf_counter(), time.thread_time()
        for _ in range(repeat):
            engine._decode(work)  # the bare decode, no sampling
            for sequence, _, _ in work:  # back to the prompt, so every decode is alike
                engine.keep(sequence, [*prompt, 0])
        wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
        ms, cpu_ms = 1000 * wall / repeat, 1000 * cpu / repeat
        costs.append(
            {
                what: n,
                "ms": round(ms, 1),
                "cpu_ms": round(cpu_ms, 1),
                "cpu_ms_per_token": round(cpu_ms / n, 1),
            }
        )
    return costs


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rooms", default="1,4")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--decode", action="store_true", help="one llama_decode, by its tokens")
    args = parser.parse_args()
    if args.decode:
        print(
            json.dumps(
                {"machine": machine(), "load": os.getloadavg(), "decode": decode_costs()}, indent=1
            )
        )
        return
    rooms = [int(n) for n in args.rooms.split(",")]
    workers = len(os.sched_getaffinity(0))
    providers: dict[str, LLM] = {
        "per-room contexts": LlamaLLM(sequences=max(rooms), models=ModelScheduler(workers)),
        "batched": BatchedLLM(sequences=max(rooms), models=ModelScheduler(workers)),
    }
    results: list[dict[str, Any]] = []
    for attempt in range(args.repeat):
        for name, llm in providers.items():  # alternately, so both see the same load
            for n in rooms:
                measured = await measure(llm, n, args.tokens)
                result = {"llm": name, "rooms": n, "attempt": attempt, **measured}
                results.append(result)
                print(json.dumps(result), file=sys.stderr)
    print(json.dumps({"machine": machine(), "load": os.getloadavg(), "results": results}, indent=1))


if __name__ == "__main__":
    asyncio.run(main())
