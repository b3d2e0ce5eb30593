"""A room lives exactly as long as its call, with real processes: calls that
end while queued leave nothing behind, a room whose landing died ends itself,
and a call whose only agent died is told so and given up on in time."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import failed
from tests.support.calls import final, greeted_call, turn
from tests.support.cluster import Cluster, cluster
from tests.support.server import ADMIN_KEY, free_port
from voxfleet.client import CallClient

pytestmark = pytest.mark.integration


@pytest.fixture
def one_slot(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_server: str
) -> Iterator[Cluster]:
    with cluster(
        tmp_path,
        postgres_server,
        agents=1,
        capacity=1,
        VOXFLEET_QUEUE_TIMEOUT_SECONDS="6",
        VOXFLEET_CALLER_GONE_SECONDS="4",
    ) as c:
        yield c
        if failed(request):
            print(c.logs())


async def _queued(c: Cluster) -> CallClient:
    call = CallClient(c.base, admin_key=ADMIN_KEY)
    data = await call.create()
    await call.connect(data["media_url"], wait_ready=False)
    await call.wait_for(lambda m: m["type"] == "state" and m["state"] == "queued")
    return call


async def _until_idle(c: Cluster) -> dict[str, int]:
    for _ in range(100):
        scaling = await asyncio.to_thread(c.scaling)
        if scaling["active_rooms"] == 0 and scaling["queued_rooms"] == 0:
            return scaling
        await asyncio.sleep(0.1)
    return scaling


async def test_calls_that_end_while_queued_leave_no_room_behind(one_slot: Cluster) -> None:
    c = one_slot
    first = await greeted_call(c.base)
    gone = [await _queued(c) for _ in range(5)]
    for call in gone:  # the caller gives up while waiting
        await call.close()
    timed_out = await _queued(c)
    await timed_out.wait_for(lambda m: m["type"] == "ended" and m["reason"] == "no_agent")
    assert (await timed_out.closed())[0] == 4503
    assert (await asyncio.to_thread(c.scaling))["queued_rooms"] == 0
    await first.end()
    await first.close()
    scaling = await _until_idle(c)
    assert (scaling["active_rooms"], scaling["queued_rooms"]) == (0, 0)
    # The one slot is free for the next caller at once: no agent took an ended call.
    fresh = await greeted_call(c.base, timeout=5)
    await turn(fresh, 0.6, seq=1)
    await fresh.end()
    await fresh.close()
    for call in [*gone, timed_out]:
        record = await call.get_call()
        assert record["status"] == "ended" and record["turns"] == []


async def test_a_room_whose_landing_died_ends_itself(one_slot: Cluster) -> None:
    c = one_slot
    call = await greeted_call(c.base)
    call.reconnect = False  # the caller does not come back: the room must end
    await turn(call, 0.6, seq=1)
    assert c.landing is not None
    c.landing.popen.send_signal(signal.SIGKILL)
    c.landing.popen.wait(10)
    await call.closed()
    # No landing ticks the room any more: the agent ends it within the timeout...
    scaling = await _until_idle(c)
    assert scaling["active_rooms"] == 0
    # ... and records the end, which the landing that held the socket cannot.
    c.landing = c._spawn("landing-2", ["landing"], free_port(), {})
    record = await CallClient(c.base, call_id=call.call_id, admin_key=ADMIN_KEY).get_call()
    assert record["status"] == "ended" and record["end_reason"] == "caller_disconnected"
    fresh = await greeted_call(c.base, timeout=5)  # and its slot is free again
    await fresh.end()
    await fresh.close()


async def test_the_only_agent_dying_is_told_and_given_up_on(one_slot: Cluster) -> None:
    c = one_slot
    call = await greeted_call(c.base)
    c.kill("agent-1", signal.SIGKILL)
    await call.wait_for(lambda m: m["type"] == "state" and m["state"] == "queued", timeout=10)
    await call.wait_for(lambda m: m["type"] == "ended" and m["reason"] == "no_agent", timeout=10)
    assert (await call.closed())[0] == 4503


async def test_a_new_agent_picks_up_the_call_of_the_only_one_that_died(
    one_slot: Cluster,
) -> None:
    c = one_slot
    call = await greeted_call(c.base)
    await turn(call, 0.6, seq=1)
    c.kill("agent-1", signal.SIGKILL)
    await call.wait_for(lambda m: m["type"] == "state" and m["state"] == "queued", timeout=10)
    c.start_agent("agent-2", capacity=1)
    await call.wait_for(lambda m: m["type"] == "state" and m["state"] == "listening", timeout=10)
    await turn(call, 0.8, seq=3)
    assert [m["text"] for m in call.finals("agent")].count("Hi.") == 1
    assert call.ws is not None and call.ws.close_code is None
    await call.end()
    await call.wait_for(final("agent", 4))
    await call.close()
