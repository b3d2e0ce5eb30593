"""What a caller experiences when the servers behind its call move. A cluster of
real processes on this machine (landings, agents with scripted providers, a
monitor, their own redis-server, a fresh PostgreSQL database); callers on the
public API speak frame-coded "speech", so a turn that lost, doubled or
reordered a single 20 ms frame counts as lost.

    ./vf bench moves failover [--kills 32]    an agent SIGKILLed at a random point of a
                                              turn -> the caller hears the answer
    ./vf bench moves drain [--calls 10]       an agent SIGTERMed while every call talks
    ./vf bench moves landing [--calls 8] [--mode drain|kill]
                                              a landing SIGTERMed or SIGKILLed behind a
                                              load balancer while every call talks

PostgreSQL: VOXFLEET_TEST_POSTGRES_URL or postgresql://postgres@127.0.0.1:5432/test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import uvloop
from tests.audio import silence, tone
from tests.support.balancer import Balancer
from tests.support.calls import final, greeted_call
from tests.support.cluster import Cluster, cluster
from tests.support.server import free_port

from bench.common import machine, percentile
from voxfleet.client import CallClient

POSTGRES = os.environ.get("VOXFLEET_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
PHASES = ("before", "during", "after", "mid_reply")


def stats(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": round(percentile(values, 50), 1),
        "p95": round(percentile(values, 95), 1),
        "p99": round(percentile(values, 99), 1),
        "max": round(max(values), 1) if values else float("nan"),
    }


def _speaking_after(call: CallClient, moment: float) -> float | None:
    """When the first `state: speaking` arrived after ``moment``: the first audio
    of an answer (the agent says it right after that audio's first frame)."""
    for message, at in zip(call.messages, call.arrivals, strict=True):
        if at > moment and message["type"] == "state" and message["state"] == "speaking":
            return at
    return None


async def _answered(call: CallClient, seq: int, seconds: float, timeout: float = 30) -> bool:
    """The caller's turn ``seq`` was heard exactly (to the frame) and answered."""
    try:
        heard = await call.wait_for(final("user", seq), timeout=timeout)
        await call.wait_for(final("agent", seq + 1), timeout=timeout)
    except (TimeoutError, ConnectionError):
        return False
    return bool(heard["text"] == f"utterance {seconds:.1f} seconds")


# -- agent crash ---------------------------------------------------------------------


async def failover(c: Cluster, kills: int) -> dict[str, Any]:
    """Each round: a greeted call, a turn without a kill (the baseline), then a
    turn whose agent is SIGKILLed at a random point: before the caller speaks,
    while it speaks, after it stopped (endpointing, thinking), or while the
    reply plays. Measured from the kill to the first audio of the answer to
    that turn (for mid_reply: the answer said again by the new agent)."""
    rng = random.Random(8)
    by_phase: dict[str, list[float]] = {p: [] for p in PHASES}
    extra: list[float] = []
    baseline: list[float] = []
    lost = 0
    for k in range(kills):
        phase = PHASES[k % len(PHASES)]
        call = await greeted_call(c.base, timeout=20)
        baseline.append(await _plain_turn(call, seq=1))
        victim = await c.agent_of(call.call_id)
        killed_at, speech_end = await _turn_with_kill(c, call, victim, phase, rng)
        ok = await _answered(call, 3, 1.0)
        answer = _speaking_after(call, max(killed_at, speech_end))
        if not ok or answer is None:
            lost += 1
        else:
            by_phase[phase].append((answer - killed_at) * 1000)
            extra.append((answer - speech_end) * 1000 - percentile(baseline, 50))
        await call.end()
        await call.close()
        c.agents.pop(victim)
        c.start_agent(f"spare-{k + 1}", capacity=2)
        print(f"  kill {k + 1}/{kills} ({phase}): lost={lost}", file=sys.stderr)
    everything = [v for values in by_phase.values() for v in values]
    return {
        "kills": kills,
        "turns_lost": lost,
        "kill_to_answer_ms": stats(everything),
        "kill_to_answer_ms_by_phase": {p: stats(v) for p, v in by_phase.items()},
        "turn_without_kill_ms": stats(baseline),
        "extra_delay_over_a_turn_without_kill_ms": stats(extra),
    }


async def _plain_turn(call: CallClient, seq: int) -> float:
    """One turn (1.0 s of speech); ms from the end of speech to the answer's audio."""
    start = time.monotonic()
    await call.send_audio(tone(1.0) + silence(1.0))
    await call.wait_for(final("agent", seq + 1), timeout=20)
    answer = _speaking_after(call, start + 1.0)
    return ((answer or start) - (start + 1.0)) * 1000


async def _turn_with_kill(
    c: Cluster, call: CallClient, victim: str, phase: str, rng: random.Random
) -> tuple[float, float]:
    """Speak 1.0 s and kill ``victim`` in ``phase``; (killed at, speech end)."""
    if phase == "before":
        killed_at = time.monotonic()
        c.kill(victim, signal.SIGKILL)
        await asyncio.sleep(0.2)
    speaking = asyncio.create_task(call.send_audio(tone(1.0) + silence(1.5)))
    start = time.monotonic()
    speech_end = start + 1.0
    if phase == "during":
        await asyncio.sleep(rng.uniform(0.1, 0.9))
    elif phase == "after":
        await asyncio.sleep(1.0 + rng.uniform(0.0, 0.35))
    elif phase == "mid_reply":
        while _speaking_after(call, speech_end) is None:  # noqa: ASYNC110 - polls arrivals
            await asyncio.sleep(0.005)
        await asyncio.sleep(rng.uniform(0.05, 0.3))
    if phase != "before":
        killed_at = time.monotonic()
        c.kill(victim, signal.SIGKILL)
    await speaking
    return killed_at, speech_end


# -- agent drain ---------------------------------------------------------------------


class Talker:
    """A caller that takes turn after turn until told to stop; counts them."""

    def __init__(self, call: CallClient, rng: random.Random) -> None:
        self.call = call
        self.rng = rng
        self.seq = 1
        self.answered = 0
        self.lost = 0
        self.turn_ms: list[tuple[float, float]] = []  # (started, ms to the answer)
        self.stop = False

    async def run(self) -> None:
        while not self.stop:
            seconds = self.rng.choice([0.5, 0.7, 0.9])
            started = time.monotonic()
            await self.call.send_audio(tone(seconds) + silence(0.6))
            if await _answered(self.call, self.seq, seconds):
                self.answered += 1
                answer = _speaking_after(self.call, started + seconds)
                if answer is not None:
                    self.turn_ms.append((started, (answer - started - seconds) * 1000))
            else:
                self.lost += 1
                return
            self.seq += 2


async def _talking(base: str, calls: int) -> tuple[list[Talker], list[asyncio.Task[None]]]:
    talkers = [Talker(await greeted_call(base), random.Random(i)) for i in range(calls)]
    return talkers, [asyncio.create_task(t.run()) for t in talkers]


async def _stop(talkers: list[Talker], tasks: list[asyncio.Task[None]]) -> int:
    """Stop talking, hang up; how many calls did not end normally."""
    for t in talkers:
        t.stop = True
    await asyncio.gather(*tasks)
    dropped = 0
    for t in talkers:
        try:
            await t.call.end()
            await t.call.wait_for(lambda m: m["type"] == "ended", timeout=10)
        except (TimeoutError, ConnectionError, OSError):
            dropped += 1
        await t.call.close()
    return dropped


def _during(talkers: list[Talker], start: float, end: float) -> list[float]:
    return [ms for t in talkers for at, ms in t.turn_ms if start <= at <= end]


async def drain(c: Cluster, calls: int) -> dict[str, Any]:
    """Every call talks; one agent is SIGTERMed: it hands each room over at a
    turn boundary and exits by itself."""
    talkers, tasks = await _talking(c.base, calls)
    await asyncio.sleep(3.0)
    victim = "agent-1"
    rooms = [t for t in talkers if await c.agent_of(t.call.call_id) == victim]
    started = time.monotonic()
    c.kill(victim, signal.SIGTERM)
    code = await asyncio.to_thread(c.wait_exit, victim, 60)
    exit_s = time.monotonic() - started
    await asyncio.sleep(3.0)
    dropped = await _stop(talkers, tasks)
    logs = c.all_logs()
    return {
        "calls": calls,
        "rooms_on_drained_agent": len(rooms),
        "sigterm_to_exit_s": round(exit_s, 2),
        "exit_code": code,
        "ended_its_drain_itself": f"drained  agent_id={victim} left=0" in logs,
        "rooms_moved_by_handover": logs.count("handover=True"),
        "rooms_moved_by_lease_expiry": logs.count("orphaned room re-queued"),
        "calls_dropped": dropped,
        "turns_answered": sum(t.answered for t in talkers),
        "turns_lost": sum(t.lost for t in talkers),
        "turn_ms_before": stats(_during(talkers, 0, started)),
        "turn_ms_during_drain": stats(_during(talkers, started - 1.0, started + exit_s)),
    }


# -- landing -------------------------------------------------------------------------


async def landing(c: Cluster, calls: int, mode: str) -> dict[str, Any]:
    """Two landings behind a load balancer; every call talks; one landing is
    SIGTERMed (its callers are told to move) or SIGKILLed (they resume)."""
    second = c._spawn("landing-2", ["landing"], free_port(), {})
    assert c.landing is not None
    try:
        async with Balancer([c.base, second.url]) as lb:
            talkers, tasks = await _talking(lb.url, calls)
            await asyncio.sleep(3.0)
            started = time.monotonic()
            c.landing.popen.send_signal(signal.SIGTERM if mode == "drain" else signal.SIGKILL)
            await asyncio.to_thread(c.landing.popen.wait, 30)
            exit_s = time.monotonic() - started
            await asyncio.sleep(4.0)
            dropped = await _stop(talkers, tasks)
    finally:
        second.popen.kill()
        second.popen.wait(10)
    gaps = [g * 1000 for t in talkers for g in t.call.gaps]
    return {
        "mode": mode,
        "calls": calls,
        "calls_moved": sum(1 for t in talkers if t.call.reconnects),
        "landing_gone_s": round(exit_s, 2),
        "calls_kept": calls - dropped - sum(1 for t in talkers if t.lost),
        "turns_answered": sum(t.answered for t in talkers),
        "turns_lost": sum(t.lost for t in talkers),
        "socket_gap_ms": stats(gaps),
        "turn_ms_before": stats(_during(talkers, 0, started)),
        "turn_ms_around_the_move": stats(_during(talkers, started - 2.0, started + 3.0)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("which", choices=["failover", "drain", "landing"])
    parser.add_argument("--kills", type=int, default=32)
    parser.add_argument("--calls", type=int, default=0)
    parser.add_argument("--mode", choices=["drain", "kill"], default="drain")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="voxfleet-bench-"))
    agents, capacity = {"failover": (3, 2), "drain": (3, 8), "landing": (2, 8)}[args.which]
    env = {"VOXFLEET_RESUME_WINDOW_SECONDS": "15", "VOXFLEET_CALLER_GONE_SECONDS": "20"}
    with (
        cluster(work, POSTGRES, agents, capacity, **env) as c,
        asyncio.Runner(loop_factory=uvloop.new_event_loop) as r,
    ):
        if args.which == "failover":
            result = r.run(failover(c, args.kills))
        elif args.which == "drain":
            result = r.run(drain(c, args.calls or 10))
        else:
            result = r.run(landing(c, args.calls or 8, args.mode))
    shape = {"agents": agents, "capacity": capacity}
    print(json.dumps({"benchmark": args.which, "machine": machine(), **shape, **result}, indent=2))


if __name__ == "__main__":
    main()
