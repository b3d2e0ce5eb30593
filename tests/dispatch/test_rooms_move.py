"""Rooms that move, with real processes: a landing, a monitor and agents as
`voxfleet` subprocesses on their own redis-server and a fresh PostgreSQL
database, synthetic callers on the real WebSocket API, real signals."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.audio import silence, tone
from tests.conftest import failed
from tests.support.calls import final, stored, turn
from tests.support.calls import greeted_call as support_greeted_call
from tests.support.cluster import Cluster, cluster
from tests.support.server import ADMIN_KEY
from tests.support.speech import piper_speech
from voxfleet.client import CallClient

pytestmark = pytest.mark.integration


def _cluster(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_server: str, **shape: Any
) -> Iterator[Cluster]:
    with cluster(tmp_path, postgres_server, **shape) as c:
        yield c
        if failed(request):
            print(c.logs())  # shown with the failure


@pytest.fixture
def three_agents(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_server: str
) -> Iterator[Cluster]:
    yield from _cluster(request, tmp_path, postgres_server, agents=3, capacity=2)


@pytest.fixture
def one_slot(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_server: str
) -> Iterator[Cluster]:
    yield from _cluster(request, tmp_path, postgres_server, agents=1, capacity=1)


@pytest.fixture
def two_agents(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_server: str
) -> Iterator[Cluster]:
    yield from _cluster(request, tmp_path, postgres_server, agents=2, capacity=2)


async def greeted_call(c: Cluster) -> CallClient:
    return await support_greeted_call(c.base)


def greetings(call: CallClient) -> list[dict[str, Any]]:
    return [m for m in call.finals("agent") if m["text"] == "Hi."]


async def metrics(base: str) -> str:
    async with httpx.AsyncClient() as http:
        return (await http.get(f"{base}/metrics")).text


async def stored_turns(c: Cluster, call: CallClient) -> list[tuple[str, str]]:
    record = await stored(call, turns=5)
    return [(t["speaker"], t["text"]) for t in record["turns"]]


async def event_kinds(c: Cluster, call: CallClient) -> list[str]:
    """The call's events, oldest first, as the monitor's inspector shows them."""
    path = f"/api/calls/{call.call_id}/timeline"
    timeline = await asyncio.to_thread(c._monitor_get, path)
    marks = {"turn_start", "turn_end", "speech_end", "stt_done", "llm_first_token"}
    marks |= {"tts_first_audio", "first_audio_sent"}
    return [item["kind"] for item in timeline["items"] if item["kind"] not in marks]


async def test_kill_9_mid_turn_the_call_goes_on_with_its_history(three_agents: Cluster) -> None:
    c = three_agents
    call = await greeted_call(c)
    await turn(call, 0.6, seq=1)
    victim = await c.agent_of(call.call_id)
    speaking = asyncio.create_task(call.send_audio(tone(1.2) + silence(0.8)))
    await asyncio.sleep(0.5)  # mid-utterance
    c.kill(victim, signal.SIGKILL)
    await speaking
    heard = await call.wait_for(final("user", 3), timeout=20)
    assert heard["text"] == "utterance 1.2 seconds"  # nothing said in the gap was lost
    await call.wait_for(final("agent", 4), timeout=20)
    assert await c.agent_of(call.call_id) != victim
    assert len(greetings(call)) == 1  # no second greeting
    assert call.ws is not None and call.ws.close_code is None  # the socket stayed open
    await call.end()
    await call.close()
    turns = await stored_turns(c, call)
    assert [s for s, _ in turns] == ["agent", "user", "agent", "user", "agent"]
    assert turns[3][1] == "utterance 1.2 seconds"
    assert await event_kinds(c, call) == ["failover"]


async def test_sigterm_hands_rooms_over_and_drops_none(three_agents: Cluster) -> None:
    c = three_agents
    calls = [await greeted_call(c) for _ in range(2)]
    for call in calls:
        await turn(call, 0.6, seq=1)
    victim = await c.agent_of(calls[0].call_id)
    c.kill(victim, signal.SIGTERM)
    # It exits on its own, well within the drain timeout, after handing over.
    code = await asyncio.to_thread(c.wait_exit, victim, 15)
    assert code in (0, -signal.SIGTERM)
    moved_by_handover_only(c, rooms=1)
    for call in calls:
        await turn(call, 0.8, seq=3)
        assert await c.agent_of(call.call_id) != victim
        assert len(greetings(call)) == 1
        await call.end()
        await call.close()
    for call in calls:
        turns = await stored_turns(c, call)
        assert [s for s, _ in turns] == ["agent", "user", "agent", "user", "agent"]
    # Only the victim's room moved, once, by handover.
    assert [await event_kinds(c, call) for call in calls] == [["handover"], []]


async def test_rolling_restart_of_every_agent_drops_no_call(three_agents: Cluster) -> None:
    c = three_agents
    calls = [await greeted_call(c) for _ in range(3)]
    seq = 1
    for old in list(c.agents):
        c.start_agent(f"{old}-new", capacity=2)  # the replacement first
        c.kill(old, signal.SIGTERM)
        await asyncio.to_thread(c.wait_exit, old, 15)
        for call in calls:
            await turn(call, 0.6, seq=seq)
        seq += 2
    moved_by_handover_only(c, rooms=3)
    for call in calls:
        assert len(greetings(call)) == 1
        assert call.ws is not None and call.ws.close_code is None
        await call.end()
        await call.close()
        turns = await stored_turns(c, call)
        assert [s for s, _ in turns] == ["agent"] + ["user", "agent"] * 3


def moved_by_handover_only(c: Cluster, rooms: int) -> None:
    """At least ``rooms`` rooms were handed over at a turn boundary, and none
    moved because its lease lapsed (a drain that failed into a failover)."""
    logs = c.all_logs()
    assert "orphaned room re-queued" not in logs
    assert logs.count("handover=True") >= rooms


async def test_capacity_is_respected_and_queued_calls_are_served(one_slot: Cluster) -> None:
    c = one_slot
    first = await greeted_call(c)
    second = CallClient(c.base, admin_key=ADMIN_KEY)
    data = await second.create()
    await second.connect(data["media_url"], wait_ready=False)
    await second.wait_for(lambda m: m["type"] == "state" and m["state"] == "queued")
    signal_ = c.scaling()
    assert signal_["queued_rooms"] == 1 and signal_["active_rooms"] == 1
    assert signal_["free_capacity"] == 0
    # ceil((1 active + 1 queued + 2 warm) / 1 per agent), within [2, 50]
    assert signal_["desired_agents"] == 4
    assert c.monitor is not None
    assert "voxfleet_desired_agents 4.0" in await metrics(c.monitor.url)
    agent = next(iter(c.agents.values()))
    assert "voxfleet_agent_active_rooms 1.0" in await metrics(agent.url)
    assert "voxfleet_edge_sockets 2.0" in await metrics(c.base)
    assert second.ready is None and not any(m["type"] == "ready" for m in second.messages)
    await first.end()
    await first.close()
    await second.wait_for(lambda m: m["type"] == "ready", timeout=15)
    await second.wait_for(final("agent", 0), timeout=15)
    await turn(second, 0.6, seq=1)
    await second.end()
    await second.close()


async def test_redis_restart_is_survived(two_agents: Cluster) -> None:
    c = two_agents
    call = await greeted_call(c)
    await turn(call, 0.6, seq=1)
    await asyncio.to_thread(c.redis.restart)
    await turn(call, 0.8, seq=3)
    # Down for longer than a lease lives, while the caller speaks: the agent
    # pauses, the edge keeps the audio, and both carry on when Redis is back.
    await asyncio.to_thread(c.redis.stop)
    speaking = asyncio.create_task(call.send_audio(tone(1.1) + silence(0.8)))
    await asyncio.sleep(2.0)
    await asyncio.to_thread(c.redis.start)
    await speaking
    heard = await call.wait_for(final("user", 5), timeout=30)
    assert heard["text"] == "utterance 1.1 seconds"
    await call.wait_for(final("agent", 6), timeout=20)
    assert len(greetings(call)) == 1
    await call.end()
    await call.close()


@pytest.fixture
def two_model_agents(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_server: str
) -> Iterator[Cluster]:
    yield from _cluster(
        request, tmp_path, postgres_server, agents=2, capacity=1, VOXFLEET_PROVIDERS="local"
    )


async def test_real_models_carry_a_call_over_a_crash(two_model_agents: Cluster) -> None:
    c = two_model_agents
    call = CallClient(c.base, admin_key=ADMIN_KEY)
    await call.start()
    await call.wait_for(final("agent", 0), timeout=60)
    victim = await c.agent_of(call.call_id)
    speaking = asyncio.create_task(
        call.send_audio(piper_speech("What is the capital of France?") + silence(1.5))
    )
    await asyncio.sleep(0.8)  # mid-question
    c.kill(victim, signal.SIGKILL)
    await speaking
    heard = await call.wait_for(final("user", 1), timeout=60)
    assert "capital" in heard["text"].lower() and "france" in heard["text"].lower()
    reply = await call.wait_for(final("agent", 2), timeout=60)
    assert reply["text"].strip()
    assert await c.agent_of(call.call_id) != victim
    assert len([m for m in call.finals("agent") if m["seq"] == 0]) == 1
    await call.end()
    await call.close()
