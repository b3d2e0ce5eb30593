"""Memory per call: RSS of a `voxfleet up` process with no calls, then with N
calls connected at once (each greeted, its microphone streaming silence).

    ./vf bench memory [--calls 4]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Microphone, machine, rss_mib, up_server
from voxfleet.client import CallClient


async def run(base: str, pid: int, calls: int) -> dict[str, Any]:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=4, help="at most VOXFLEET_AGENT_CAPACITY")
    args = parser.parse_args()
    with up_server({"VOXFLEET_AGENT_CAPACITY": str(args.calls)}) as (base, proc):
        print(json.dumps(asyncio.run(run(base, proc.pid, args.calls)), indent=2))


if __name__ == "__main__":
    main()
