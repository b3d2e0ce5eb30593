"""Redis dies under live calls and comes back empty, again and again: no turn
is lost, none is doubled, every reply is heard whole and stored.

Real processes (a landing, a monitor, three agents, scripted providers, a
fresh PostgreSQL database) and their own redis-server without persistence,
killed with SIGKILL and started again a second later, as an evicted or crashed
Redis is."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import failed
from tests.support.calls import assert_every_reply_heard_whole, greeted_call, stored, turn
from tests.support.cluster import Cluster, cluster
from voxfleet.client import CallClient

pytestmark = pytest.mark.integration

CALLERS = 6
TALK_SECONDS = 35.0
DOWN_SECONDS = 1.0


@pytest.fixture
def restart_cluster(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_server: str
) -> Iterator[Cluster]:
    with cluster(tmp_path, postgres_server, agents=3, capacity=3) as c:
        yield c
        if failed(request):
            print(c.logs())


async def _talk(call: CallClient, rng: random.Random, until: float) -> list[float]:
    """Turn after turn until ``until``; returns the length of each utterance."""
    said: list[float] = []
    seq = 1
    while time.monotonic() < until:
        seconds = rng.choice([0.5, 0.7, 0.9, 1.1, 1.3])
        reply = await turn(call, seconds, seq, timeout=30)
        assert reply["text"].startswith(f"You said utterance {seconds:.1f} seconds"), reply
        said.append(seconds)
        seq += 2
    return said


async def _restart_redis_until(c: Cluster, rng: random.Random, done: asyncio.Event) -> int:
    restarts = 0
    while True:
        try:
            async with asyncio.timeout(rng.uniform(4.0, 7.0)):
                await done.wait()
            return restarts
        except TimeoutError:
            pass
        await asyncio.to_thread(c.redis.kill)
        await asyncio.sleep(DOWN_SECONDS)
        await asyncio.to_thread(c.redis.start)  # empty: nothing was persisted
        restarts += 1


async def _stored(call: CallClient, turns: int) -> list[tuple[str, str]]:
    record = await stored(call, turns)
    return [(t["speaker"], t["text"]) for t in record["turns"]]


async def test_redis_restarts_lose_no_turn(restart_cluster: Cluster) -> None:
    c = restart_cluster
    rng = random.Random(6)
    calls = [await greeted_call(c.base) for _ in range(CALLERS)]
    done = asyncio.Event()
    restarter = asyncio.create_task(_restart_redis_until(c, rng, done))
    until = time.monotonic() + TALK_SECONDS
    try:
        said = await asyncio.gather(
            *(_talk(call, random.Random(i), until) for i, call in enumerate(calls))
        )
    finally:
        done.set()
        restarts = await restarter
    assert restarts >= 4
    for call, utterances in zip(calls, said, strict=True):
        await call.end()
        await call.wait_for(lambda m: m["type"] == "ended")
        await call.close()
        heard_user = [m["text"] for m in call.finals("user")]
        assert heard_user == [f"utterance {s:.1f} seconds" for s in utterances]
        agent = call.finals("agent")
        assert [m["seq"] for m in agent] == list(range(0, 2 * len(utterances) + 1, 2))
        assert [m["text"] for m in agent].count("Hi.") == 1
        assert_every_reply_heard_whole(call)
        stored = await _stored(call, 2 * len(utterances) + 1)
        heard = sorted(
            [(m["seq"], "agent", m["text"]) for m in agent]
            + [(m["seq"], "user", m["text"]) for m in call.finals("user")]
        )
        assert stored == [(speaker, text) for _, speaker, text in heard]
    # Nothing is left behind: every room and job is gone once the calls are.
    for _ in range(50):
        scaling = c.scaling()
        if scaling["active_rooms"] == 0 and scaling["queued_rooms"] == 0:
            break
        await asyncio.sleep(0.1)
    assert (scaling["active_rooms"], scaling["queued_rooms"]) == (0, 0)
    assert not any(m["type"] == "error" for call in calls for m in call.messages)


async def test_a_turn_spoken_while_redis_is_down_is_answered_once(
    restart_cluster: Cluster,
) -> None:
    c = restart_cluster
    call = await greeted_call(c.base)
    await turn(call, 0.6, seq=1)
    await asyncio.to_thread(c.redis.kill)
    speaking = asyncio.create_task(turn(call, 1.2, seq=3, timeout=30))
    await asyncio.sleep(2.5)  # the whole utterance and its end, with Redis away
    await asyncio.to_thread(c.redis.start)
    reply = await speaking
    assert reply["text"].startswith("You said utterance 1.2 seconds")
    await turn(call, 0.8, seq=5)
    await call.end()
    await call.wait_for(lambda m: m["type"] == "ended")
    await call.close()
    assert_every_reply_heard_whole(call)
    assert [m["seq"] for m in call.finals("user")] == [1, 3, 5]
