"""Capacity from measurement: an agent's models report how busy they were
(the scheduler's load over its last seconds); an agent whose models are at
its load limit takes no new room beyond its first, and the scaling signal
counts rooms per agent by what they cost, not by the configured count."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.server import ADMIN_KEY, app_server
from voxfleet.client import CallClient
from voxfleet.dispatch.base import AgentInfo
from voxfleet.dispatch.scaling import has_room, measured_capacity
from voxfleet.providers.local.scheduler import BusyWindow

pytestmark = pytest.mark.integration


def agent(active: int, load: float | None, capacity: int = 4) -> AgentInfo:
    return AgentInfo(
        agent_id="a",
        capacity=capacity,
        active=active,
        ready=True,
        draining=False,
        seen=0.0,
        model_load=load,
    )


@pytest.mark.parametrize(
    ("active", "load", "expected"),
    [
        (0, None, 4),  # nothing measured: the configured count
        (2, None, 4),  # hosted models: not this process's CPU
        (0, 0.3, 4),  # no rooms: nothing to measure them by
        (2, 0.4, 4),  # 2 rooms cost 0.4: 4 would cost 0.8
        (4, 0.95, 3),  # 4 rooms are too many for the limit
        (1, 1.0, 1),  # one room fills it: never less than one
    ],
)
def test_rooms_per_agent_are_measured_where_they_can_be(
    active: int, load: float | None, expected: int
) -> None:
    assert measured_capacity(agent(active, load), max_load=0.8) == expected


def test_an_agent_at_its_load_limit_has_no_room_beyond_its_first() -> None:
    assert has_room(agent(0, 0.9), 0.8) == 4  # an idle agent always takes a room
    assert has_room(agent(2, 0.85), 0.8) == 0
    assert has_room(agent(2, 0.5), 0.8) == 2


def test_the_busy_window_counts_the_last_seconds_and_running_jobs() -> None:
    window = BusyWindow(seconds=10.0)
    window.start(1, 100.0)
    window.finish(1, 103.0)  # 3 s busy
    window.start(2, 108.0)  # running since 108
    assert window.busy(110.0) == pytest.approx(5.0)
    assert window.busy(115.0) == pytest.approx(7.0)  # 105..115: the running job only
    window.finish(2, 116.0)
    assert window.busy(130.0) == pytest.approx(0.0)  # all of it is older than 10 s


async def test_a_loaded_agent_leaves_new_rooms_queued_until_its_load_falls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load = {"now": 0.95}
    monkeypatch.setattr("voxfleet.roles.agent.models_load", lambda: load["now"])
    async with (
        app_server(tmp_path, agent_capacity=4, agent_max_model_load=0.8) as (base, _rt),
        httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as http,
    ):
        first, second = CallClient(base), CallClient(base)
        await first.start()  # an agent without rooms takes one, whatever its load
        await second.connect((await second.create())["media_url"], wait_ready=False)
        await second.wait_for(lambda m: m["type"] == "state" and m["state"] == "queued")
        signal = (await http.get("/api/scaling")).json()
        assert signal["queued_rooms"] == 1
        assert signal["free_capacity"] == 0  # three slots, but no model time
        load["now"] = 0.3
        await second.wait_for(lambda m: m["type"] == "ready", timeout=10)
        for call in (first, second):
            await call.end()
            await call.close()
