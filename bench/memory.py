"""Memory per call, from a `voxfleet up` process with the local models.

./vf bench memory [--calls 4]            N calls connected at once (each greeted,
                                         its microphone streaming silence): RSS
./vf bench memory --talking 1,2,4,8      for each N, a fresh server and N callers
                                         asking Piper-spoken questions at the same
                                         time: peak RSS (VmHWM) and the slope per call
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    Microphone,
    machine,
    percentile,
    piper_question,
    rss_mib,
    status_mib,
    up_server,
)
from bench.latency import QUESTIONS
from voxfleet.client import CallClient, Json


async def connected(base: str, pid: int, calls: int) -> dict[str, Any]:
    idle = rss_mib(pid)
    clients = [CallClient(base) for _ in range(calls)]
    async with contextlib.AsyncExitStack() as stack:
        for client in clients:
            await client.start()
            await stack.enter_async_context(Microphone(client))
        for client in clients:
            await client.wait_for(
                lambda m: m["type"] == "transcript" and m["role"] == "agent" and m["final"],
                timeout=120,
            )
        busy = rss_mib(pid)
        for client in clients:
            await client.end()
    for client in clients:
        await client.close()
    return {
        "machine": machine(),
        "calls": calls,
        "rss_idle_mib": round(idle),
        "rss_with_calls_mib": round(busy),
        "per_call_mib": round((busy - idle) / calls, 1),
    }


async def talker(base: str, questions: list[tuple[str, bytes]]) -> tuple[list[float], int]:
    """One caller asking ``questions``, each after the previous reply ended:
    ms from the end of speech to the first reply audio, and the turns that got
    no reply within 60 s. (Any reply counts: with several calls on the cores the
    endpointer may cut a question in two, so turns are not matched by number.)"""
    call = CallClient(base)
    await call.start()
    latencies: list[float] = []
    unanswered = 0
    await call.wait_for(final("agent"), timeout=60)  # the greeting, said whole
    async with Microphone(call) as mic:
        for _text, pcm in questions:
            await asyncio.sleep(0.6)
            start, frames_before = len(call.messages), len(call.audio)
            speech_end = mic.say(pcm)
            try:
                heard = await call.wait_for(final("user"), timeout=60, start=start)
                after = next(i for i, m in enumerate(call.messages) if m is heard) + 1
                await call.wait_for(final("agent"), timeout=60, start=after)
            except TimeoutError:
                unanswered += 1
                continue
            first = next((t for t, _ in call.audio[frames_before:] if t >= speech_end), None)
            if first is None:
                unanswered += 1  # a reply with no audio after the end of speech
            else:
                latencies.append((first - speech_end) * 1000)
    await call.end()
    await call.close()
    return latencies, unanswered


async def talking(base: str, pid: int, calls: int, questions: int) -> dict[str, Any]:
    """``calls`` callers at once, each asking ``questions`` questions; their
    turns are not aligned (each starts after a random 0-2 s)."""
    spoken = [(q, piper_question(q)) for q in QUESTIONS]
    idle_hwm = status_mib(pid, "VmHWM")

    async def caller(k: int) -> tuple[list[float], int]:
        await asyncio.sleep(random.uniform(0, 2))
        return await talker(
            base, [spoken[(k * questions + i) % len(spoken)] for i in range(questions)]
        )

    results = await asyncio.gather(*(caller(k) for k in range(calls)))
    latencies = [x for lat, _ in results for x in lat]
    return {
        "calls": calls,
        "turns_answered": len(latencies),
        "turns_unanswered": sum(u for _, u in results),
        "vm_hwm_idle_mib": round(idle_hwm),
        "vm_hwm_mib": round(status_mib(pid, "VmHWM")),
        "voice_to_voice_ms_p50": round(percentile(latencies, 50)),
        "voice_to_voice_ms_p95": round(percentile(latencies, 95)),
    }


def final(role: str) -> Callable[[Json], bool]:
    return lambda m: m["type"] == "transcript" and m["role"] == role and bool(m["final"])


def slope(rows: list[dict[str, Any]]) -> float:
    """MiB of peak RSS per added talking call (least squares over the rows)."""
    if len(rows) < 2:
        return float("nan")
    x = np.array([r["calls"] for r in rows], dtype=float)
    y = np.array([r["vm_hwm_mib"] for r in rows], dtype=float)
    return round(float(np.polyfit(x, y, 1)[0]), 1)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=4, help="at most VOXFLEET_AGENT_CAPACITY")
    parser.add_argument("--talking", help="comma-separated N: talking calls at once, e.g. 1,2,4,8")
    parser.add_argument("--questions", type=int, default=2, help="per caller, with --talking")
    args = parser.parse_args()
    if not args.talking:
        with up_server({"VOXFLEET_AGENT_CAPACITY": str(args.calls)}) as (base, proc):
            print(json.dumps(asyncio.run(connected(base, proc.pid, args.calls)), indent=2))
        return
    rows = []
    for n in (int(v) for v in args.talking.split(",")):
        with up_server({"VOXFLEET_AGENT_CAPACITY": str(n)}) as (base, proc):
            rows.append(asyncio.run(talking(base, proc.pid, n, args.questions)))
        print(json.dumps(rows[-1]), file=sys.stderr)
    result = {"machine": machine(), "rows": rows, "vm_hwm_mib_per_talking_call": slope(rows)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
