"""Voice-to-voice latency through the real WebSocket API with the local models.

From the end of speech in the caller's audio (a Piper-spoken question streamed
at real time by a simulated microphone) to the first agent audio frame the
client receives; p50/p95 over all turns, and the per-stage marks the server
stored for each reply (relative to the end of speech its VAD saw).

    ./vf bench latency [--turns 20] [--turns-per-call 5] [--url http://127.0.0.1:8080]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Microphone, machine, percentile, piper_question, rss_mib, up_server
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
STAGES = ("stt_done", "llm_first_token", "tts_first_audio", "first_audio_sent")


def agent_final(seq: int) -> Any:
    return lambda m: (
        m["type"] == "transcript" and m["role"] == "agent" and m["final"] and m["seq"] == seq
    )


async def one_call(
    base: str, questions: list[tuple[str, bytes]]
) -> tuple[list[float], list[dict[str, float]]]:
    call = CallClient(base)
    await call.start()
    latencies: list[float] = []
    await call.wait_for(agent_final(0), timeout=60)
    async with Microphone(call) as mic:
        for i, (_text, pcm) in enumerate(questions):
            await asyncio.sleep(0.6)
            frames_before = len(call.audio)
            speech_end = mic.say(pcm)
            await call.wait_for(agent_final(2 + 2 * i), timeout=60)
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


async def run(base: str, turns: int, per_call: int, pid: int | None) -> dict[str, Any]:
    spoken = [(q, piper_question(q)) for q in QUESTIONS]
    latencies: list[float] = []
    marks: list[dict[str, float]] = []
    rss_before = rss_mib(pid) if pid else None
    started = time.monotonic()
    done = 0
    while done < turns:
        batch = [spoken[(done + k) % len(spoken)] for k in range(min(per_call, turns - done))]
        lat, mk = await one_call(base, batch)
        latencies += lat
        marks += mk
        done += len(batch)
        print(
            f"  {done}/{turns} turns, last call p50 {percentile(lat, 50):.0f} ms", file=sys.stderr
        )
    result: dict[str, Any] = {
        "machine": machine(),
        "turns": len(latencies),
        "seconds": round(time.monotonic() - started, 1),
        "voice_to_voice_ms": {
            "p50": round(percentile(latencies, 50)),
            "p95": round(percentile(latencies, 95)),
            "min": round(min(latencies)),
            "max": round(max(latencies)),
        },
        "server_stages_ms_p50": {
            s: round(percentile([m[s] for m in marks if s in m], 50)) for s in STAGES
        },
        "server_stages_ms_p95": {
            s: round(percentile([m[s] for m in marks if s in m], 95)) for s in STAGES
        },
    }
    if pid:
        result["server_rss_mib"] = {"before": round(rss_before or 0), "after": round(rss_mib(pid))}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--turns-per-call", type=int, default=5)
    parser.add_argument("--url", help="a running voxfleet; default: start `voxfleet up`")
    args = parser.parse_args()
    if args.url:
        result = asyncio.run(run(args.url, args.turns, args.turns_per_call, None))
    else:
        with up_server() as (base, proc):
            result = asyncio.run(run(base, args.turns, args.turns_per_call, proc.pid))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
