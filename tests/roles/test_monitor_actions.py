"""An admin's actions from the monitor, over real HTTP against the real app:
ending a live call ends the caller's socket with ``operator_ended``; draining an
agent makes it drain; viewers and requests without the CSRF token are refused."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.roles.test_monitor_signin import ADMIN, PASSWORD, error_of, signed_in
from tests.support.calls import greeted_call
from tests.support.server import ADMIN_KEY, app_server

pytestmark = pytest.mark.integration

SETTINGS = {"monitor_admin_user": ADMIN, "monitor_admin_password": PASSWORD}
VIEWER = {"name": "watcher", "password": "a viewer password"}


async def test_an_admin_ends_a_live_call_and_the_caller_is_told(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    async with (
        app_server(tmp_path, **SETTINGS) as (base, _runtime),
        httpx.AsyncClient(base_url=base) as admin,
        httpx.AsyncClient(base_url=base) as viewer,
    ):
        csrf = await signed_in(admin)
        added = await admin.post("/api/users", json=VIEWER, headers={"X-CSRF-Token": csrf})
        assert added.status_code == 201
        viewer_csrf = await signed_in(viewer, VIEWER["name"], VIEWER["password"])
        call = await greeted_call(base)
        route = f"/api/calls/{call.call_id}/end"

        refused = await viewer.post(route, headers={"X-CSRF-Token": viewer_csrf})
        assert error_of(refused)[:2] == (403, "forbidden")
        no_token = await admin.post(route)
        assert error_of(no_token)[:2] == (403, "csrf")
        unknown = await admin.post("/api/calls/nope/end", headers={"X-CSRF-Token": csrf})
        assert error_of(unknown) == (404, "not_found", "call: no call with id 'nope'")

        ended = await admin.post(route, headers={"X-CSRF-Token": csrf})
        assert ended.status_code == 200, ended.text
        assert ended.json() == {"call_id": call.call_id, "end_reason": "operator_ended"}
        told = await call.wait_for(lambda m: m["type"] == "ended", timeout=10)
        assert told["reason"] == "operator_ended"
        record = await call.get_call()
        assert (record["status"], record["end_reason"]) == ("ended", "operator_ended")
        again = await admin.post(route, headers={"X-CSRF-Token": csrf})
        assert error_of(again)[:2] == (409, "conflict")
        rooms = (await admin.get("/api/rooms")).json()["rooms"]
        assert call.call_id not in [r["room_id"] for r in rooms]
        audited = [
            r.__dict__["fields"]
            for r in caplog.records
            if r.getMessage() == "call ended by operator"
        ]
        assert audited == [{"call_id": call.call_id, "user": ADMIN}]
        await call.close()


async def test_a_drain_request_makes_the_agent_drain(tmp_path: Path) -> None:
    key = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with (
        app_server(tmp_path, **SETTINGS) as (base, runtime),
        httpx.AsyncClient(base_url=base, headers=key) as http,
    ):
        assert runtime.worker is not None
        agent_id = runtime.worker.agent_id
        unknown = await http.post("/api/agents/nobody/drain")
        assert error_of(unknown) == (404, "not_found", "agent: no live agent with id 'nobody'")
        asked = await http.post(f"/api/agents/{agent_id}/drain")
        assert asked.status_code == 202
        assert asked.json() == {"agent_id": agent_id, "draining": True}
        async with asyncio.timeout(10):
            while not runtime.worker.draining:  # noqa: ASYNC110 - the agent drains on its own
                await asyncio.sleep(0.05)
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        async with asyncio.timeout(10):
            while True:
                agents = (await http.get("/api/agents")).json()["agents"]
                if agents[0]["draining"]:
                    break
                await asyncio.sleep(0.1)
