"""Callers move too: two landing replicas behind a load balancer (as a
Kubernetes Service), agents and Redis as real processes. A landing drained
(SIGTERM) or killed (SIGKILL) under live calls, or a caller's network gone for
5 s: every call goes on, with its agent and history, no second greeting."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.conftest import failed
from tests.support.balancer import Balancer
from tests.support.calls import assert_every_reply_heard_whole, greeted_call, turn
from tests.support.cluster import Cluster, Proc, cluster
from tests.support.server import free_port
from voxfleet.client import CallClient

pytestmark = pytest.mark.integration


@pytest.fixture
def two_landings(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_server: str
) -> Iterator[tuple[Cluster, Proc]]:
    with cluster(
        tmp_path,
        postgres_server,
        agents=2,
        capacity=4,
        VOXFLEET_RESUME_WINDOW_SECONDS="8",
        VOXFLEET_CALLER_GONE_SECONDS="12",
    ) as c:
        second = c._spawn("landing-2", ["landing"], free_port(), {})
        try:
            yield c, second
        finally:
            if second.alive():
                second.popen.kill()
            second.popen.wait(10)
            if failed(request):
                print(c.logs(), second.log.read_text()[-4000:])


@pytest.fixture
async def lb(two_landings: tuple[Cluster, Proc]) -> AsyncIterator[Balancer]:
    c, second = two_landings
    async with Balancer([c.base, second.url]) as balancer:
        yield balancer


async def _calls(lb: Balancer, n: int) -> list[CallClient]:
    return [await greeted_call(lb.url) for _ in range(n)]


async def _finish(calls: list[CallClient]) -> None:
    for call in calls:
        await call.end()
        await call.wait_for(lambda m: m["type"] == "ended")
        await call.close()
        assert_every_reply_heard_whole(call)
        assert [m["text"] for m in call.finals("agent")].count("Hi.") == 1


async def test_a_drained_landing_moves_its_callers_and_exits_by_itself(
    two_landings: tuple[Cluster, Proc], lb: Balancer
) -> None:
    c, _second = two_landings
    calls = await _calls(lb, 4)
    for call in calls:
        await turn(call, 0.6, seq=1)
    assert c.landing is not None
    c.landing.popen.send_signal(signal.SIGTERM)
    code = await asyncio.to_thread(c.landing.popen.wait, 15)
    assert code in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it handled
    assert "landing drained  sockets_left=0" in c.landing.log.read_text()  # all had moved
    moved = [call for call in calls if call.reconnects]
    assert moved, "round robin put some calls on the drained landing"
    assert all(not call.gaps for call in moved)  # told to move: no drop, no gap
    for call in calls:
        await turn(call, 0.8, seq=3)
    await _finish(calls)


async def test_a_killed_landing_loses_no_call(
    two_landings: tuple[Cluster, Proc], lb: Balancer
) -> None:
    c, _second = two_landings
    calls = await _calls(lb, 4)
    assert c.landing is not None
    c.landing.popen.send_signal(signal.SIGKILL)
    for call in calls:
        await turn(call, 0.6, seq=1, timeout=30)
    assert any(call.gaps for call in calls)  # the ones on the dead landing came back
    await _finish(calls)


async def test_a_caller_offline_for_five_seconds_comes_back(
    two_landings: tuple[Cluster, Proc], lb: Balancer
) -> None:
    calls = await _calls(lb, 2)
    await turn(calls[0], 0.6, seq=1)
    await lb.cut(5.0)
    for call in calls:
        await call.wait_for(lambda m: m["type"] == "ready", start=1, timeout=20)
        assert call.gaps and call.gaps[-1] >= 4.5
    await turn(calls[0], 0.8, seq=3)
    await turn(calls[1], 0.7, seq=1)
    await _finish(calls)
