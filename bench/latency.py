"""Voice-to-voice latency through the real WebSocket API with the local models.

From the end of speech in the caller's audio (a question spoken by Piper or
espeak-ng, streamed at real time by a simulated microphone) to the first agent
audio frame the client receives; p50/p95/p99 over all turns, the per-stage
marks the server stored for each reply (relative to the end of speech its VAD
saw), and the server's CPU-seconds and peak RSS.

``--concurrent N`` runs N callers talking at the same time, each starting at a
random moment and pausing a random 0.4-1.5 s after each answer, so their turns
are not aligned.

    ./vf bench latency [--turns 20] [--turns-per-call 5] [--concurrent 1] [--url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.speech import espeak_speech

from bench.common import (
    Microphone,
    cpu_seconds,
    machine,
    metrics_of,
    peak_rss_mib,
    percentile,
    piper_question,
    rss_mib,
    up_server,
)
from voxfleet.client import CallClient

QUESTIONS = [
    "What is the capital of France?",
    "Can you tell me a joke?",
    "What time do you open tomorrow?",
    "How is the weather today?",
    "What is your name?",
    "Do you like music?",
    "How many days are in a week?",
    "What color is the sky?",
    "Can you help me book a table?",
    "Where are you located?",
]
Marks = list[dict[str, float]]
Spoken = list[tuple[str, bytes]]
MODEL_CPU = "voxfleet_model_cpu_seconds_total{"
LLM_TOKENS = "voxfleet_llm_tokens_total "
STAGES = ("stt_done", "llm_first_token", "tts_first_audio", "first_audio_sent")


def agent_final(seq: int) -> Any:
    return lambda m: (
        m["type"] == "transcript" and m["role"] == "agent" and m["final"] and m["seq"] == seq
    )


def spoken_questions() -> Spoken:
    """Every question in Piper's voice, and in espeak-ng's when it is installed:
    alternating, so consecutive turns do not share a voice."""
    piper = [(q, piper_question(q)) for q in QUESTIONS]
    if shutil.which("espeak-ng") is None:
        print("  espeak-ng not installed: Piper's voice only", file=sys.stderr)
        return piper
    espeak = [(q, espeak_speech(q)) for q in QUESTIONS]
    return [v for pair in zip(piper, espeak[1:] + espeak[:1], strict=True) for v in pair]


async def one_call(
    base: str,
    questions: Spoken,
    pause: tuple[float, float] = (0.6, 0.6),
    waits: list[float] | None = None,
) -> tuple[list[float], list[dict[str, float]]]:
    """One call of ``questions``; its voice-to-voice latencies and the server's
    marks. ``waits`` gets the call's wait for an agent (ms, from ``ready``)."""
    waits = [] if waits is None else waits
    call = CallClient(base)
    await call.start()
    waits.append(float(str((call.ready or {}).get("wait_ms", 0.0))))
    latencies: list[float] = []
    await call.wait_for(agent_final(0), timeout=60)
    async with Microphone(call) as mic:
        for i, (_text, pcm) in enumerate(questions):
            await asyncio.sleep(random.uniform(*pause))
            frames_before = len(call.audio)
            speech_end = mic.say(pcm)
            await call.wait_for(agent_final(2 + 2 * i), timeout=90)
            first = next(t for t, _ in call.audio[frames_before:] if t >= speech_end)
            latencies.append((first - speech_end) * 1000)
    # Read while the call is live: its read token reads it only until it ends.
    record = await call.get_call()
    deadline = time.monotonic() + 10  # the agent's sink writes a moment after the caption
    while len(record["turns"]) < 1 + 2 * len(questions) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        record = await call.get_call()
    await call.end()
    await call.wait_for(lambda m: m["type"] == "ended", timeout=10)
    await call.close()
    marks = [
        t["latency_ms"] for t in record["turns"] if t["speaker"] == "agent" and t["latency_ms"]
    ]
    return latencies, marks


def stage_percentiles(marks: Marks, q: float) -> dict[str, int]:
    return {s: round(percentile([m[s] for m in marks if s in m], q)) for s in STAGES}


async def caller(
    base: str,
    spoken: Spoken,
    first: int,
    turns: int,
    per_call: int,
    concurrent: bool,
    waits: list[float],
) -> tuple[list[float], Marks, int]:
    """One caller: calls of ``per_call`` questions until it has asked ``turns``."""
    latencies: list[float] = []
    marks: Marks = []
    calls = 0
    if concurrent:
        await asyncio.sleep(random.uniform(0.0, 3.0))  # callers do not start together
    pause = (0.4, 1.5) if concurrent else (0.6, 0.6)
    done = 0
    while done < turns:
        batch = [
            spoken[(first + done + k) % len(spoken)] for k in range(min(per_call, turns - done))
        ]
        lat, mk = await one_call(base, batch, pause, waits)
        latencies += lat
        marks += mk
        done += len(batch)
        calls += 1
        print(
            f"  caller {first}: {done}/{turns} turns, last call p50 {percentile(lat, 50):.0f} ms",
            file=sys.stderr,
        )
    return latencies, marks, calls


async def run(
    base: str, turns: int, per_call: int, concurrent: int, pid: int | None
) -> dict[str, Any]:
    random.seed(concurrent)  # the same starts and pauses for the same N, run after run
    spoken = spoken_questions()
    rss_before = rss_mib(pid) if pid else None
    cpu_before = cpu_seconds(pid) if pid else None
    models_before = await metrics_of(base, MODEL_CPU)
    tokens_before = sum((await metrics_of(base, LLM_TOKENS)).values())
    started = time.monotonic()
    each = -(-turns // concurrent)  # every caller asks the same number of questions
    waits: list[float] = []
    results = await asyncio.gather(
        *(
            caller(base, spoken, 3 * k, each, per_call, concurrent > 1, waits)
            for k in range(concurrent)
        )
    )
    latencies = [v for lat, _m, _c in results for v in lat]
    marks = [v for _l, mk, _c in results for v in mk]
    calls = sum(c for _l, _m, c in results)
    result: dict[str, Any] = {
        "machine": machine(),
        "concurrent": concurrent,
        "calls": calls,
        "turns": len(latencies),
        "seconds": round(time.monotonic() - started, 1),
        "voice_to_voice_ms": {
            "p50": round(percentile(latencies, 50)),
            "p95": round(percentile(latencies, 95)),
            "p99": round(percentile(latencies, 99)),
            "min": round(min(latencies)),
            "max": round(max(latencies)),
        },
        # A call waits for an agent while the agent's models are at their load
        # limit (VOXFLEET_AGENT_MAX_MODEL_LOAD): it is queued, not answered slowly.
        "agent_wait_ms": {"p50": round(percentile(waits, 50)), "max": round(max(waits))},
        "server_stages_ms_p50": stage_percentiles(marks, 50),
        "server_stages_ms_p95": stage_percentiles(marks, 95),
    }
    models = await metrics_of(base, MODEL_CPU)
    tokens = sum((await metrics_of(base, LLM_TOKENS)).values()) - tokens_before
    by_model = {
        key.partition('kind="')[2].rstrip('"}'): value - models_before.get(key, 0.0)
        for key, value in models.items()
    }
    if pid:
        cpu = cpu_seconds(pid) - (cpu_before or 0.0)
        result["server_cpu_seconds"] = {
            "total": round(cpu, 1),
            "per_call": round(cpu / calls, 2),
            "per_turn": round(cpu / len(latencies), 2),
            # Where it went, per call: each model's jobs, and the rest of the
            # process (event loop: media, VAD, the store; the landing's relay).
            "per_call_by_part": {
                **{k: round(v / calls, 2) for k, v in sorted(by_model.items())},
                "rest": round((cpu - sum(by_model.values())) / calls, 2),
            },
        }
        if tokens:  # the local LLM's tokens, and its jobs' CPU for each
            result["llm_tokens"] = round(tokens)
            result["llm_cpu_ms_per_token"] = round(1000 * by_model.get("llm", 0.0) / tokens, 2)
        result["server_rss_mib"] = {
            "before": round(rss_before or 0),
            "after": round(rss_mib(pid)),
            "peak": round(peak_rss_mib(pid)),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--turns-per-call", type=int, default=5)
    parser.add_argument("--concurrent", type=int, default=1, help="callers talking at once")
    parser.add_argument("--url", help="a running voxfleet; default: start `voxfleet up`")
    parser.add_argument(
        "--seed",
        type=int,
        default=1,
        help="VOXFLEET_LLM_SEED of the server it starts (-1: unseeded): a seed gives the same "
        "conversations the same replies, so runs compare CPU per call for the same words",
    )
    args = parser.parse_args()
    if args.url:
        result = asyncio.run(run(args.url, args.turns, args.turns_per_call, args.concurrent, None))
    else:
        # Room for every caller: whether the agent takes one is its load budget's call.
        env = {"VOXFLEET_AGENT_CAPACITY": str(max(4, args.concurrent))}
        if args.seed >= 0:
            env["VOXFLEET_LLM_SEED"] = str(args.seed)
        with up_server(env) as (base, proc):
            result = asyncio.run(
                run(base, args.turns, args.turns_per_call, args.concurrent, proc.pid)
            )
        result["llm_seed"] = args.seed if args.seed >= 0 else None
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
