"""Benchmarks of rooms that move, on a cluster of real processes (landing,
monitor, agents with scripted providers, their own redis-server, a fresh
PostgreSQL database):

    ./vf bench rooms failover [--kills 30]   kill -9 -> the room's new agent attached
    ./vf bench rooms dispatch [--rooms 50]   call created -> ready (agent attached)
    ./vf bench rooms drain [--calls 10]      SIGTERM -> process exit, calls dropped
    ./vf bench rooms relay [--calls 50] [--senders 2] [--client-nice 19]
                                             edge + bus overhead per audio frame
    ./vf bench rooms flood [--seconds 30]     a caller's reply time, alone and while
                                             other clients flood their sockets
    ./vf bench rooms redis [--calls 8 --seconds 90]
                                             Redis killed and restarted empty every
                                             ~10 s under live calls: turns lost

PostgreSQL: VOXFLEET_TEST_POSTGRES_URL or postgresql://postgres@127.0.0.1:5432/test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import uvloop
from tests.audio import silence, tone
from tests.support.calls import assert_every_reply_heard_whole, final, turn
from tests.support.cluster import Cluster, cluster

from bench.common import cpu_seconds, machine, metrics_of, percentile
from voxfleet.client import CallClient

POSTGRES = os.environ.get("VOXFLEET_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def stats(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": round(percentile(values, 50), 2),
        "p95": round(percentile(values, 95), 2),
        "p99": round(percentile(values, 99), 2),
        "max": round(max(values), 2) if values else float("nan"),
    }


async def greeted(c: Cluster) -> CallClient:
    call = CallClient(c.base)
    await call.start()
    await call.wait_for(final("agent", 0), timeout=20)
    return call


async def failover(c: Cluster, kills: int) -> dict[str, Any]:
    """Each round: a call mid-utterance, its agent killed with SIGKILL; time until
    another agent has attached (the edge gets `attached`, seen by the client as
    the replayed turn being answered), and whether the caller's turn survived."""
    attach_ms: list[float] = []
    lost = 0
    for k in range(kills):
        call = await greeted(c)
        victim = await c.agent_of(call.call_id)
        speaking = asyncio.create_task(call.send_audio(tone(1.0) + silence(0.7)))
        await asyncio.sleep(0.4)
        killed_at = time.monotonic()
        c.kill(victim, signal.SIGKILL)
        while (await c.agent_of(call.call_id, timeout=10)) == victim:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        attach_ms.append((time.monotonic() - killed_at) * 1000)
        await speaking
        try:
            heard = await call.wait_for(final("user", 1), timeout=15)
            lost += heard["text"] != "utterance 1.0 seconds"
        except TimeoutError:
            lost += 1
        await call.end()
        await call.close()
        c.agents.pop(victim)
        c.start_agent(f"spare-{k + 1}", capacity=2)
        print(f"  kill {k + 1}/{kills}: {attach_ms[-1]:.0f} ms", file=sys.stderr)
    return {"kill_to_attached_ms": stats(attach_ms), "caller_turns_lost": lost}


async def dispatch(c: Cluster, rooms: int) -> dict[str, Any]:
    """Open calls one by one up to ``rooms`` concurrent, then replace them one at
    a time at full load. For each: ``wait_ms`` from `ready` (the room queued to an
    agent attached, as the edge saw it) and the client's POST /api/calls ->
    `ready` (adds HTTP, the database writes and the WebSocket handshake)."""
    calls: list[CallClient] = []
    filling: list[tuple[float, float]] = []
    at_full: list[tuple[float, float]] = []

    async def open_call(into: list[tuple[float, float]]) -> None:
        call = CallClient(c.base)
        started = time.monotonic()
        await call.start()
        assert call.ready is not None
        into.append((float(call.ready["wait_ms"]), (time.monotonic() - started) * 1000))
        calls.append(call)

    for _ in range(rooms):
        await open_call(filling)
    for _ in range(20):
        old = calls.pop(0)
        await old.end()
        await old.close()
        await open_call(at_full)
    for call in calls:
        await call.end()
        await call.close()
    return {
        "wait_ms_first_room": filling[0][0],
        "wait_ms_while_filling": stats([w for w, _ in filling[1:]]),
        f"wait_ms_at_{rooms}_rooms": stats([w for w, _ in at_full]),
        "create_to_ready_ms_while_filling": stats([t for _, t in filling[1:]]),
        f"create_to_ready_ms_at_{rooms}_rooms": stats([t for _, t in at_full]),
    }


async def drain(c: Cluster, calls_n: int) -> dict[str, Any]:
    victim = "agent-1"
    calls = [await greeted(c) for _ in range(calls_n)]
    on_victim = [call for call in calls if await c.agent_of(call.call_id) == victim]
    started = time.monotonic()
    c.kill(victim, signal.SIGTERM)
    code = await asyncio.to_thread(c.wait_exit, victim, 60)
    exit_s = time.monotonic() - started
    dropped = 0
    for call in calls:
        try:
            await call.send_audio(tone(0.6) + silence(0.6))
            await call.wait_for(final("agent", 2), timeout=20)
        except (TimeoutError, ConnectionError):
            dropped += 1
        await call.end()
        await call.close()
    return {
        "calls": calls_n,
        "calls_on_drained_agent": len(on_victim),
        "sigterm_to_exit_s": round(exit_s, 2),
        "exit_code": code,
        "calls_dropped": dropped,
    }


_SENDER = """
import asyncio, sys, time
from voxfleet.client import CallClient

async def main(seconds):
    calls = []
    while (line := await asyncio.to_thread(sys.stdin.readline)).strip() != "go":
        call = CallClient("http://unused")
        await call.connect(line.strip(), wait_ready=False)
        calls.append(call)
        print("connected", flush=True)
    for call in calls:
        await call.wait_for(lambda m: m["type"] == "ready", timeout=10)

    async def send(call):
        start = time.monotonic()
        for i in range(int(seconds * 50)):
            await call.ws.send(time.time_ns().to_bytes(8, "little") + bytes(632))
            await asyncio.sleep(max(0.0, start + (i + 1) * 0.02 - time.monotonic()))

    await asyncio.gather(*(send(call) for call in calls))
    for call in calls:
        await call.close()
    print("done", flush=True)

asyncio.run(main(float(sys.argv[1])))
"""


async def relay(
    c: Cluster, calls_n: int, seconds: float, client_nice: int, senders: int
) -> dict[str, Any]:
    """Caller frames stamped with the send time; the agent side of the bus is this
    process (a RedisBus subscriber per room, on the real Redis), so the figure is
    WebSocket client -> landing edge -> Redis -> subscriber, per frame.

    Like a real agent, this process ticks every room's down stream once a second
    (without it the edge takes a silent room for orphaned after 3 s and queues
    it again). On 2 shared cores the client competes with the landing and Redis
    for the CPU: ``client_nice`` lowers this whole process's priority (which
    delays the receiving side too), ``senders`` moves the sending sockets into
    that many processes at the lowest priority (each frame is stamped when it is
    sent, so a late sender does not inflate the figure), leaving the landing,
    Redis and the receiving side first in line for a core. Also reported, over
    the sending: the landing's loop lag and collections, this process's loop
    lag, the cores each process used, Redis's slow log and latency monitor."""
    from redis.asyncio import Redis

    from voxfleet.bus.base import room_control, room_down, room_up
    from voxfleet.bus.redis import RedisBus
    from voxfleet.dispatch.redis import RedisRoomQueue
    from voxfleet.messages.room import (
        Attached,
        AudioFrame,
        Tick,
        decode_up,
        encode,
        encode_numbered,
    )

    if client_nice:
        os.nice(client_nice)
    bus = RedisBus(c.redis.url)
    redis = Redis.from_url(c.redis.url)
    queue = RedisRoomQueue(redis)
    delays: list[float] = []
    clients: list[CallClient] = []
    subs = []
    rooms: list[str] = []
    measuring = asyncio.Event()

    async def tick() -> None:
        while True:
            await asyncio.sleep(1.0)
            for room in list(rooms):
                tick = Tick(stream="down", epoch=1, seq=1)
                await bus.publish(room_control(room), encode(tick))

    ticker = asyncio.create_task(tick(), name="bench:ticks")
    own_lag: list[float] = []

    async def watch_own_loop() -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + 0.05
            await asyncio.sleep(0.05)
            if measuring.is_set():
                own_lag.append((loop.time() - due) * 1000)

    watcher = asyncio.create_task(watch_own_loop(), name="bench:lag")
    procs = [
        subprocess.Popen(  # noqa: ASYNC220 - started once, before the measurement
            [sys.executable, "-c", _SENDER, str(seconds)],
            preexec_fn=lambda: os.nice(19),  # noqa: PLW1509 - no threads yet in the child
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(senders)
    ]

    async def tell(proc: subprocess.Popen[str], line: str) -> str:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(line + "\n")
        proc.stdin.flush()
        return await asyncio.to_thread(proc.stdout.readline) if line != "go" else ""

    try:
        for i in range(calls_n):
            call = CallClient(c.base)
            data = await call.create()
            sub = await bus.subscribe(room_up(call.call_id))
            subs.append(sub)
            if procs:
                await tell(procs[i % len(procs)], data["media_url"])
            else:
                await call.connect(data["media_url"], wait_ready=False)
            job = await queue.take("bench-agent", timeout=10)  # this process is the agent
            while job is not None and job.room_id != call.call_id:
                await queue.done(job)  # an earlier room queued again (a slow attach)
                job = await queue.take("bench-agent", timeout=10)
            assert job is not None
            await queue.done(job)
            attached = Attached(
                agent_id="bench",
                fence=1,
                resume=False,
                replay_epoch=0,
                sample_rate=16000,
                enqueued_at=time.time(),
            )
            await bus.publish(room_down(call.call_id), encode_numbered(1, 1, encode(attached)))
            rooms.append(call.call_id)
            if not procs:
                await call.wait_for(lambda m: m["type"] == "ready", timeout=10)
                clients.append(call)

        async def receive(sub: Any) -> None:
            while (message := await sub.get(timeout=2.0)) is not None:
                item = decode_up(message)
                if not isinstance(item.message, AudioFrame):
                    continue
                pcm = item.message.pcm
                if len(pcm) >= 8 and measuring.is_set():
                    sent = int.from_bytes(pcm[:8], "little") / 1e9
                    delays.append((time.time() - sent) * 1000)

        async def send(call: CallClient) -> None:
            assert call.ws is not None
            start = time.monotonic()
            for i in range(int(seconds * 50)):
                frame = time.time_ns().to_bytes(8, "little") + b"\x00" * 632
                await call.ws.send(frame)
                await asyncio.sleep(max(0.0, start + (i + 1) * 0.02 - time.monotonic()))

        receivers = [asyncio.create_task(receive(s)) for s in subs]
        lag_before = await landing_pauses(c.base)
        assert c.landing is not None
        cpu_pids = {
            "landing": c.landing.popen.pid,
            "redis": c.redis.pid or 0,
            "client": os.getpid(),
            **{f"sender{i + 1}": proc.pid for i, proc in enumerate(procs)},
        }
        cpu_before = {name: cpu_seconds(pid) for name, pid in cpu_pids.items()}
        # Redis's own view: commands over 1 ms (SLOWLOG), events over 1 ms (LATENCY).
        await redis.config_set("slowlog-log-slower-than", 1000)
        await redis.config_set("latency-monitor-threshold", 1)
        await redis.slowlog_reset()
        await redis.execute_command("LATENCY", "RESET")
        started = time.monotonic()
        measuring.set()
        for proc in procs:
            await tell(proc, "go")
        await asyncio.gather(*(send(call) for call in clients))
        for proc in procs:
            assert proc.stdout is not None
            assert (await asyncio.to_thread(proc.stdout.readline)).strip() == "done"
        cpu = {
            name: round((cpu_seconds(pid) - cpu_before[name]) / (time.monotonic() - started), 2)
            for name, pid in cpu_pids.items()
        }
        redis_side = {
            "commands_over_1ms": await redis.slowlog_len(),
            "latency_events_over_1ms": await redis.execute_command("LATENCY", "LATEST"),
        }
        for call in clients:
            await call.close()  # the edge's ticks stop, so the receivers end
        await asyncio.gather(*receivers)
        lag_after = await landing_pauses(c.base)
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
        ticker.cancel()
        watcher.cancel()
        for call in clients:
            await call.close()
        for sub in subs:
            await sub.close()
        await bus.close()
        await redis.aclose()
    return {
        "calls": calls_n,
        "client_nice": client_nice,
        "sender_processes": senders,
        "frames": len(delays),
        "client_to_agent_bus_ms": stats(delays),
        "landing_while_measuring": {k: lag_after[k] - lag_before[k] for k in lag_after},
        "client_loop_lag_ms": stats(own_lag),
        "cores_used_while_sending": cpu,
        "redis_while_sending": redis_side,
    }


async def landing_pauses(base: str) -> dict[str, float]:
    """The landing's loop-lag and garbage-collection histograms, as counts of
    pauses over 5, 10, 20 and 50 ms (see voxfleet/observability/pauses.py)."""
    lag = await metrics_of(base, "voxfleet_event_loop_lag_seconds_bucket")
    gc = await metrics_of(base, "voxfleet_gc_pause_seconds_bucket")

    def over(found: dict[str, float], le: str) -> float:
        total = sum(v for k, v in found.items() if 'le="+Inf"' in k)
        under = sum(v for k, v in found.items() if f'le="{le}"' in k)
        return total - under

    return {
        "loop_lag_samples": sum(v for k, v in lag.items() if 'le="+Inf"' in k),
        "loop_lags_over_5ms": over(lag, "0.005"),
        "loop_lags_over_10ms": over(lag, "0.01"),
        "loop_lags_over_20ms": over(lag, "0.02"),
        "loop_lags_over_50ms": over(lag, "0.05"),
        "gc_pauses_over_20ms": over(gc, "0.02"),
        "gc_pauses_over_50ms": over(gc, "0.05"),
    }


async def redis_restarts(c: Cluster, calls_n: int, seconds: float) -> dict[str, Any]:
    """``calls_n`` callers hold multi-turn calls for ``seconds`` while redis-server
    (no persistence) is killed and started again, empty, a second later, about
    every 10 s. Every turn is checked end to end: each utterance heard once and
    answered, each reply's audio heard whole (to the 20 ms frame), and what is
    stored equal to what was heard. Reports the calls and turns that lost anything."""
    import random

    rng = random.Random(6)
    done = asyncio.Event()
    calls = [await greeted(c) for _ in range(calls_n)]
    turn_s: list[float] = []
    failures: list[str] = []

    async def restarter() -> int:
        restarts = 0
        while not done.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(rng.uniform(8.0, 12.0)):
                    await done.wait()
            if done.is_set():
                break
            await asyncio.to_thread(c.redis.kill)
            await asyncio.sleep(1.0)
            await asyncio.to_thread(c.redis.start)
            restarts += 1
            print(f"  redis restart {restarts}", file=sys.stderr)
        return restarts

    async def talk(i: int, call: CallClient) -> int:
        talk_rng = random.Random(i)
        seq, turns = 1, 0
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            length = talk_rng.choice([0.5, 0.7, 0.9, 1.1, 1.3])
            started = time.monotonic()
            try:
                await turn(call, length, seq, timeout=30)
            except (TimeoutError, AssertionError, ConnectionError) as e:
                failures.append(f"call {i} turn {seq}: {type(e).__name__} {e}"[:300])
                return turns
            turn_s.append(time.monotonic() - started)
            seq += 2
            turns += 1
        return turns

    task = asyncio.create_task(restarter())
    try:
        turns = await asyncio.gather(*(talk(i, call) for i, call in enumerate(calls)))
    finally:
        done.set()
        restarts = await task
    calls_lost = 0
    for i, call in enumerate(calls):
        await call.end()
        await call.close()
        try:
            assert_every_reply_heard_whole(call)
        except AssertionError as e:
            failures.append(f"call {i}: {e}"[:300])
        if any(f.startswith(f"call {i} ") or f.startswith(f"call {i}:") for f in failures):
            calls_lost += 1
    return {
        "calls": calls_n,
        "seconds": seconds,
        "redis_restarts": restarts,
        "turns_answered": sum(turns),
        "calls_that_lost_something": calls_lost,
        "failures": failures,
        "turn_s": stats(turn_s),
    }


_FLOODER = """
import asyncio, contextlib, sys
from websockets.exceptions import ConnectionClosed
from voxfleet.client import CallClient

async def main(base):
    sent = 0
    while True:
        call = CallClient(base)
        await call.start()
        with contextlib.suppress(ConnectionClosed):
            while True:
                await call.ws.send("x")
                sent += 1
                if sent % 1000 == 0:
                    await asyncio.sleep(0)
        with contextlib.suppress(Exception):
            await call.close()

asyncio.run(main(sys.argv[1]))
"""


async def flood(c: Cluster, seconds: float) -> dict[str, Any]:
    """A victim caller takes turns and times each reply (end of its speech as
    sent -> first agent audio frame received), first alone, then while two
    other clients, one call after another, flood their sockets with one-byte
    text frames as fast as the landing takes them. The flooders run in their
    own processes at the lowest CPU priority: an attacker's CPU is not ours,
    and on these 2 shared cores a flooder at full priority would measure the
    machine, not the landing."""

    async def reply_times(victim: CallClient, first_seq: int, until: float) -> list[float]:
        out, seq = [], first_seq
        while time.monotonic() < until:
            await victim.send_audio(tone(0.6))
            spoke_at = time.monotonic()
            frames_before = len(victim.audio)
            await victim.send_audio(silence(0.6))
            await victim.wait_for(final("agent", seq + 1), timeout=30)
            first = victim.audio[frames_before][0]
            out.append((first - spoke_at) * 1000)
            seq += 2
        return out

    victim = await greeted(c)
    alone = await reply_times(victim, 1, time.monotonic() + seconds / 2)
    flooders = [
        subprocess.Popen(  # noqa: ASYNC220 - started once, before the measurement
            [sys.executable, "-c", _FLOODER, c.base],
            preexec_fn=lambda: os.nice(19),  # noqa: PLW1509 - no threads yet in the child
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    try:
        await asyncio.sleep(1.0)
        under_flood = await reply_times(victim, 1 + 2 * len(alone), time.monotonic() + seconds / 2)
    finally:
        for proc in flooders:
            proc.kill()
            proc.wait()
    ended = await metrics_of(c.base, "voxfleet_calls_ended_total")
    await victim.end()
    await victim.close()
    return {
        "reply_ms_alone": stats(alone),
        "reply_ms_under_flood": stats(under_flood),
        "flooding_calls_ended": ended,
        "victim_ended": victim.of_type("ended"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "which", choices=["failover", "dispatch", "drain", "relay", "redis", "flood"]
    )
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--rooms", type=int, default=50)
    parser.add_argument("--calls", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--client-nice", type=int, default=0, help="relay: lower the client's CPU priority"
    )
    parser.add_argument(
        "--senders", type=int, default=0, help="relay: send from this many niced processes"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="voxfleet-bench-"))
    shape = {
        "failover": {"agents": 3, "capacity": 2},
        "dispatch": {"agents": 5, "capacity": max(1, args.rooms // 5 + 1)},
        "drain": {"agents": 3, "capacity": 10},
        "relay": {"agents": 0, "capacity": 1},
        "redis": {"agents": 3, "capacity": 6},
        "flood": {"agents": 1, "capacity": 4},
    }[args.which]
    with (
        cluster(work, POSTGRES, **shape) as c,
        asyncio.Runner(loop_factory=uvloop.new_event_loop) as r,
    ):
        if args.which == "failover":
            result = r.run(failover(c, args.kills))
        elif args.which == "dispatch":
            result = r.run(dispatch(c, args.rooms))
        elif args.which == "drain":
            result = r.run(drain(c, args.calls or 10))
        elif args.which == "flood":
            result = r.run(flood(c, args.seconds))
        elif args.which == "redis":
            result = r.run(redis_restarts(c, args.calls or 8, args.seconds))
        else:
            result = r.run(relay(c, args.calls or 50, args.seconds, args.client_nice, args.senders))
    print(json.dumps({"benchmark": args.which, "machine": machine(), **shape, **result}, indent=2))


if __name__ == "__main__":
    main()
