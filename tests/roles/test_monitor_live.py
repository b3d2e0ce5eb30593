"""The monitor's live view over a real WebSocket against the real app: nobody
anonymous gets it; a signed-in user gets a snapshot, then the changes as a
call starts and ends; two monitors on one Redis see the same room, and an
admin on one ends a call another process serves; a drain
closes the socket with 1001, and so does SIGTERM to a real monitor process."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as sync_connect

from tests.roles.test_monitor_signin import ADMIN, PASSWORD, signed_in
from tests.support.calls import greeted_call, turn
from tests.support.cluster import cluster
from tests.support.redis_server import RedisServer
from tests.support.server import ADMIN_KEY, app_server
from voxfleet.roles.runtime import Role
from voxfleet.roles.sessions import SESSION_COOKIE

pytestmark = pytest.mark.integration

SETTINGS = {"monitor_admin_user": ADMIN, "monitor_admin_password": PASSWORD}


def ws_url(base: str) -> str:
    return base.replace("http://", "ws://") + "/api/live"


async def next_message(ws: ClientConnection, timeout: float = 10.0) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    return message


async def until(ws: ClientConnection, wanted: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    while not wanted(message := await next_message(ws)):
        pass
    return message


async def until_room(ws: ClientConnection, room_id: str, present: bool) -> dict[str, Any]:
    """The first change that adds (or removes) ``room_id``."""
    while True:
        message = await next_message(ws)
        rooms = message.get("rooms", {})
        if present and any(r["room_id"] == room_id for r in rooms.get("upsert", [])):
            return message
        if not present and room_id in rooms.get("remove", []):
            return message


async def test_anonymous_and_wrong_key_sockets_are_closed_with_4401(tmp_path: Path) -> None:
    async with app_server(tmp_path, frozenset({Role.MONITOR}), **SETTINGS) as (base, _runtime):
        for headers, why in (
            ({}, "authorization: sign in"),
            ({"Authorization": "Bearer nope"}, "authorization: not the admin API key"),
            ({"Cookie": f"{SESSION_COOKIE}=stale"}, "session: expired"),
        ):
            async with connect(ws_url(base), additional_headers=headers) as ws:
                with pytest.raises(ConnectionClosed) as closed:
                    await ws.recv()
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 4401
            assert closed.value.rcvd.reason.startswith(why)


async def test_snapshot_then_a_call_appears_and_goes_and_a_drain_closes_1001(
    tmp_path: Path,
) -> None:
    async with (
        app_server(tmp_path, **SETTINGS) as (base, runtime),
        httpx.AsyncClient(base_url=base) as http,
    ):
        await signed_in(http)
        cookie = {"Cookie": f"{SESSION_COOKIE}={http.cookies[SESSION_COOKIE]}"}
        async with connect(ws_url(base), additional_headers=cookie) as ws:
            first = await next_message(ws)
            assert first["type"] == "snapshot" and first["rooms"] == []
            assert [a["capacity"] for a in first["agents"]] == [runtime.settings.agent_capacity]
            # Measured where serve.py's loop watch runs (or another test ran it): null or ms.
            assert "loop_lag_ms" in first["agents"][0]
            assert first["scaling"]["active_rooms"] == 0
            for frame, problem in (
                ("not json", "frame: not valid JSON"),
                (b"\x00", "frame: expected JSON text, got binary"),
                ("[1]", "frame: expected a JSON object"),
                ('{"type": "nope"}', "type: expected 'ping' or 'watch'"),
                ('{"type": "watch"}', "call_id: Field required"),
                ('{"type": "watch", "call_id": "x;drop"}', "call_id: not a call id"),
            ):
                await ws.send(frame)
                error = await next_message(ws)
                assert (error["type"], error["message"]) == ("error", problem), frame
            await ws.send(json.dumps({"type": "ping"}))
            assert (await next_message(ws))["type"] == "pong"

            call = await greeted_call(base)
            added = await until_room(ws, call.call_id, present=True)
            room = next(r for r in added["rooms"]["upsert"] if r["room_id"] == call.call_id)
            assert room["profile"] == runtime.profiles.default
            assert room["agent_id"] is not None and room["started_at"] is not None
            assert (room["state"], room["failovers"], room["last_utterance"]) == ("served", 0, None)

            # Watching the call: its captions, as its agent sends them.
            await ws.send(json.dumps({"type": "watch", "call_id": call.call_id}))
            await until(ws, lambda m: m["type"] == "watching" and m["call_id"] == call.call_id)
            await turn(call, 0.8, 1)
            heard = await until(ws, lambda m: m["type"] == "caption" and m["final"])
            assert (heard["call_id"], heard["role"], heard["seq"]) == (call.call_id, "user", 1)
            assert heard["text"] == "utterance 0.8 seconds"
            reply = await until(
                ws, lambda m: m["type"] == "caption" and m["final"] and m["role"] == "agent"
            )
            assert reply["seq"] == 2
            # Reconnecting gets a fresh snapshot that already holds the room, and,
            # once the agent's sink has stored the turn, the caller's last words.
            async with asyncio.timeout(15):
                while True:
                    async with connect(ws_url(base), additional_headers=cookie) as again:
                        fresh = await next_message(again)
                    assert fresh["type"] == "snapshot"
                    assert [r["room_id"] for r in fresh["rooms"]] == [call.call_id]
                    if fresh["rooms"][0]["last_utterance"] == "utterance 0.8 seconds":
                        break
                    await asyncio.sleep(0.2)

            await call.end()
            await until_room(ws, call.call_id, present=False)

            await runtime.drain()  # what SIGTERM does first
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await next_message(ws)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001


async def test_two_monitors_on_one_redis_see_the_same_room(tmp_path: Path) -> None:
    with RedisServer() as redis:
        await two_monitors_see_one_room(tmp_path, redis)


async def two_monitors_see_one_room(tmp_path: Path, redis: RedisServer) -> None:
    # One Redis and one database (a SQLite file here, PostgreSQL in production).
    shared = {"redis_url": redis.url, **SETTINGS}
    key = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with (
        app_server(tmp_path, frozenset({Role.LANDING, Role.AGENT}), **shared) as (base, _),
        app_server(tmp_path, frozenset({Role.MONITOR}), **shared) as (m1, _r1),
        app_server(tmp_path, frozenset({Role.MONITOR}), **shared) as (m2, _r2),
        connect(ws_url(m1), additional_headers=key) as one,
        connect(ws_url(m2), additional_headers=key) as two,
        httpx.AsyncClient(base_url=m2, headers=key) as admin,
    ):
        for ws in (one, two):
            assert (await next_message(ws))["type"] == "snapshot"
        call = await greeted_call(base)
        for ws in (one, two):
            added = await until_room(ws, call.call_id, present=True)
            assert added["rooms"]["upsert"][0]["profile"] is not None  # the shared store
        # An admin on the second monitor ends the call served by another process.
        ended = await admin.post(f"/api/calls/{call.call_id}/end")
        assert ended.status_code == 200, ended.text
        told = await call.wait_for(lambda m: m["type"] == "ended", timeout=10)
        assert told["reason"] == "operator_ended"
        for ws in (one, two):
            await until_room(ws, call.call_id, present=False)
        await call.close()


def test_sigterm_closes_live_sockets_with_1001(tmp_path: Path, postgres_server: str) -> None:
    """A real `voxfleet monitor` process: SIGTERM drains it, and its dashboards
    are told to go away (1001) before the process exits."""
    with cluster(tmp_path, postgres_server, agents=1) as c:
        assert c.monitor is not None
        key = {"Authorization": f"Bearer {ADMIN_KEY}"}
        with sync_connect(ws_url(c.monitor.url), additional_headers=key) as ws:
            snap = json.loads(ws.recv(timeout=10))
            assert snap["type"] == "snapshot" and len(snap["agents"]) == 1
            c.monitor.popen.send_signal(signal.SIGTERM)
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    ws.recv(timeout=10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
        assert c.monitor.popen.wait(20) in (0, -signal.SIGTERM)  # uvicorn re-raises it
