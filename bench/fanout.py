"""The live view's fan-out, on a cluster of real processes (a landing, 2
monitor replicas, agents with scripted providers, their own redis-server, a
fresh PostgreSQL database):

    ./vf bench fanout [--dashboards 200] [--calls 50] [--seconds 60]

Dashboards (WebSocket clients of GET /api/live with the admin API key, split
evenly over the 2 replicas) run in 4 processes of their own (--client-procs),
and a fifth reads the same events straight off Redis; the calls run here,
each taking a turn of scripted speech after pauses of 1-5 s, so their agents
keep storing turns and publishing `turn` events. For each event that happened
in the measured window: the delay from its own time (`at`, stamped by the
agent) to its arrival at each dashboard (and at the Redis reader: the agent's
and Redis's share), and whether every dashboard got it. Also the cores each
process used per wall second (/proc/<pid>/stat), and the live view's cost on
an agent: the CPU one event costs the agent to build and publish (measured
here, on the cluster's Redis, as the agent does it) times the events per room
per second of the run, as % of one core per room.

PostgreSQL: VOXFLEET_TEST_POSTGRES_URL or postgresql://postgres@127.0.0.1:5432/test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import uvloop
from tests.support.calls import turn
from tests.support.cluster import Cluster, Proc, cluster
from tests.support.server import ADMIN_KEY

from bench.common import machine
from bench.rooms import POSTGRES, greeted, stats
from voxfleet.bus.base import live_events
from voxfleet.bus.redis import RedisBus
from voxfleet.client import CallClient
from voxfleet.domain.calls import LatencyMarks, Speaker, Turn
from voxfleet.messages.live import of_turn
from voxfleet.roles.live_events import LiveEvents

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime (fields 14, 15)


def busy_cores_so_far() -> float:
    """CPU seconds the whole machine has been busy (all cores, /proc/stat)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / TICK  # less idle and iowait


# -- the dashboards' side (its own process) ------------------------------------


async def dashboards(urls: list[str], count: int, redis_url: str | None) -> None:
    """``count`` live sockets spread over ``urls``. Reads `start <t>` and `stop
    <t>` on stdin; prints each event of that window's delays and deliveries."""
    from websockets.asyncio.client import connect

    delays: list[float] = []
    got: dict[str, int] = {}
    window = [float("inf"), float("inf")]
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}

    async def one(url: str, opened: asyncio.Event) -> None:
        async with connect(url, additional_headers=headers, max_size=None) as ws:
            snapshot = json.loads(await ws.recv())
            assert snapshot["type"] == "snapshot", snapshot
            opened.set()
            async for raw in ws:
                now = time.time()
                if not raw.startswith('{"type":"event"'):  # skip parsing changes
                    continue
                message = json.loads(raw)
                if not window[0] <= message["at"] < window[1]:
                    continue
                delays.append((now - message["at"]) * 1000)
                key = f"{message['call_id']}/{message['kind']}/{message['detail'].get('seq')}"
                got[key] = got.get(key, 0) + 1

    async def bus_leg() -> None:
        """The same events read straight off Redis: how late they were before
        any monitor touched them (the agent's and Redis's share)."""
        bus = RedisBus(redis_url, name="bench-bus-leg")
        try:
            async with await bus.subscribe(live_events()) as sub:
                async for raw in sub:
                    now = time.time()
                    at = json.loads(raw)["at"]
                    if window[0] <= at < window[1]:
                        on_bus.append((now - at) * 1000)
        finally:
            await bus.close()

    on_bus: list[float] = []
    opened = [asyncio.Event() for _ in range(count)]
    tasks = [asyncio.create_task(one(urls[i % len(urls)], opened[i])) for i in range(count)]
    if redis_url is not None:
        tasks.append(asyncio.create_task(bus_leg()))
    await asyncio.gather(*(o.wait() for o in opened))
    print("open", flush=True)
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        what, at = line.split()
        window[0 if what == "start" else 1] = float(at)
        if what == "stop":
            break
    await asyncio.sleep(2.0)  # what was on its way at the stop arrives
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    rounded = {"delays_ms": [round(d, 2) for d in delays], "bus_ms": [round(d, 2) for d in on_bus]}
    print(json.dumps({**rounded, "events": got}), flush=True)


# -- the benchmark -------------------------------------------------------------


def start_dashboards(
    urls: list[str], count: int, redis_url: str | None = None
) -> subprocess.Popen[str]:
    bus = ["--redis", redis_url] if redis_url else []
    return subprocess.Popen(
        [sys.executable, __file__, "--dashboards-of", *urls, "--count", str(count), *bus],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


async def talk(call: CallClient, until: float, rng: random.Random) -> int:
    """A turn of scripted speech after each pause of 1-5 s until ``until``;
    the turns taken."""
    seq, turns = 1, 0
    while time.monotonic() < until:
        await asyncio.sleep(rng.uniform(1.0, 5.0))
        await turn(call, 0.4, seq, timeout=30)
        seq += 2
        turns += 1
    return turns


async def publish_cost(redis_url: str, events: int = 1000, every: float = 0.002) -> float:
    """CPU seconds (this process) an agent spends per live event: building it
    from a stored turn and publishing it on Redis, one every ``every`` s, less
    the same loop without events (its timer wake-ups)."""
    bus = RedisBus(redis_url, name="bench-agent")
    live = LiveEvents(bus)
    now = time.time()
    marks = LatencyMarks(now - 1.0, now - 0.9, now - 0.8, now - 0.6, now - 0.4, now - 0.3)
    stored = Turn("c_bench", 2, Speaker.AGENT, "Hello there.", now - 1, now, marks=marks)
    await bus.publish("bench/warm-up", b"x")

    async def run(emit: bool) -> float:
        started = time.process_time()
        for _ in range(events):
            if emit:
                live.emit(of_turn(stored))
            await asyncio.sleep(every)
        async with asyncio.timeout(10):
            while emit and live.published + live.dropped < events:  # noqa: ASYNC110
                await asyncio.sleep(every)  # the last ones are on their way
        return time.process_time() - started

    idle = await run(emit=False)
    busy = await run(emit=True)
    sent = live.published + live.dropped
    await live.close()
    await bus.close()
    if sent < events:
        raise RuntimeError(f"only {sent} of {events} events went out")
    return max(0.0, busy - idle) / events


async def fanout(
    c: Cluster, replicas: list[Proc], n_dash: int, n_calls: int, seconds: float, n_procs: int
) -> dict[str, Any]:
    urls = [p.url.replace("http://", "ws://") + "/api/live" for p in replicas]
    # Each process opens its share alternately on the replicas; the last one only
    # reads the events off Redis.
    shares = [n_dash // n_procs + (i < n_dash % n_procs) for i in range(n_procs)]
    procs = [start_dashboards(urls[i % 2 :] + urls[: i % 2], n) for i, n in enumerate(shares)]
    procs.append(start_dashboards(urls, 0, c.redis.url))
    for proc in procs:
        assert proc.stdout is not None
        line = await asyncio.to_thread(proc.stdout.readline)
        assert line.strip() == "open", line
    calls: list[CallClient] = []
    for start in range(0, n_calls, 10):
        calls += await asyncio.gather(*(greeted(c) for _ in range(start, min(n_calls, start + 10))))
    print(f"  {len(calls)} calls, {n_dash} dashboards: measuring {seconds:.0f} s", file=sys.stderr)

    def tell(line: str) -> None:
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(line + "\n")
            proc.stdin.flush()

    assert c.landing is not None
    watched = {p.name: p.popen.pid for p in [*replicas, *c.agents.values(), c.landing]}
    watched |= {f"dashboards-{i + 1}": proc.pid for i, proc in enumerate(procs[:-1])}
    watched["bench (callers)"] = os.getpid()
    load_before = os.getloadavg()
    cpu_before = {name: cpu_seconds(pid) for name, pid in watched.items()}
    busy_before = busy_cores_so_far()
    wall_start = time.time()
    tell(f"start {wall_start}")
    until = time.monotonic() + seconds
    rngs = [random.Random(i) for i in range(len(calls))]
    turns = await asyncio.gather(*(talk(call, until, rngs[i]) for i, call in enumerate(calls)))
    wall_stop = time.time()
    tell(f"stop {wall_stop}")
    cpu = {
        name: round((cpu_seconds(pid) - cpu_before[name]) / (wall_stop - wall_start), 3)
        for name, pid in watched.items()
    }
    load_after = os.getloadavg()
    busy = (busy_cores_so_far() - busy_before) / (wall_stop - wall_start)
    results = []
    for proc in procs:
        out, _ = await asyncio.to_thread(proc.communicate, timeout=60)
        results.append(json.loads(out.strip().splitlines()[-1]))
    for call in calls:
        await call.end()
        await call.close()

    delays = [d for r in results for d in r["delays_ms"]]
    on_bus = [d for r in results for d in r["bus_ms"]]
    per_event: dict[str, int] = {}
    for r in results:
        for key, count in r["events"].items():
            per_event[key] = per_event.get(key, 0) + count
    window = wall_stop - wall_start
    per_room = len(per_event) / len(calls) / window
    cost = await publish_cost(c.redis.url)
    return {
        "dashboards": n_dash,
        "calls": len(calls),
        "seconds": round(window, 1),
        "turns_taken": sum(turns),
        "events": len(per_event),
        "deliveries": sum(per_event.values()),
        "deliveries_missing": len(per_event) * n_dash - sum(per_event.values()),
        "event_to_dashboard_ms": stats(delays),
        "event_to_redis_subscriber_ms": stats(on_bus),
        "cores_used": cpu,
        "load_average_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        "machine_busy_cores": round(busy, 2),
        "busy_cores_not_ours": round(busy - sum(cpu.values()), 2),
        "agent_cpu_us_per_event": round(cost * 1e6, 1),
        "events_per_room_per_s": round(per_room, 3),
        "agent_core_pct_per_room": round(cost * per_room * 100, 5),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dashboards", type=int, default=200)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--agents", type=int, default=2)
    parser.add_argument(
        "--client-procs", type=int, default=4, help="processes the dashboards run in"
    )
    parser.add_argument("--dashboards-of", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--redis", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.dashboards_of:
        uvloop.run(dashboards(args.dashboards_of, args.count, args.redis))
        return
    work = Path(tempfile.mkdtemp(prefix="voxfleet-bench-"))
    shape = {"agents": args.agents, "capacity": args.calls // args.agents + 1}
    with (
        cluster(work, POSTGRES, **shape) as c,
        asyncio.Runner(loop_factory=uvloop.new_event_loop) as r,
    ):
        assert c.monitor is not None
        replicas = [c.monitor, c.start_monitor("monitor-2")]
        measured = fanout(c, replicas, args.dashboards, args.calls, args.seconds, args.client_procs)
        result = r.run(measured)
    print(json.dumps({"benchmark": "fanout", "machine": machine(), **shape, **result}, indent=2))


if __name__ == "__main__":
    main()
