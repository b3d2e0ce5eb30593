"""The live view's fan-out across monitor replicas, over real WebSockets and a
real Redis: an agent's room event reaches every dashboard on every replica,
with the time it happened; a real call's agent tells them its room was
attached and its turns stored; a dashboard that (re)connects while events
flow gets a snapshot before any of them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.roles.test_monitor_live import SETTINGS, next_message, until, ws_url
from tests.support.calls import greeted_call, turn
from tests.support.redis_server import RedisServer
from tests.support.server import ADMIN_KEY, app_server
from voxfleet.bus.redis import RedisBus
from voxfleet.messages.live import LiveKind, room_event
from voxfleet.roles.live_events import LiveEvents
from voxfleet.roles.runtime import Role, Runtime

pytestmark = pytest.mark.integration

KEY = {"Authorization": f"Bearer {ADMIN_KEY}"}


async def subscribed(*runtimes: Runtime) -> None:
    """Each replica's hub has subscribed to the events topic (a publish made
    before that is, by design, not replayed)."""
    async with asyncio.timeout(10):
        for runtime in runtimes:
            assert runtime.live_hub is not None
            await runtime.live_hub.subscribed.wait()


async def test_an_event_reaches_every_dashboard_on_both_replicas(tmp_path: Path) -> None:
    with RedisServer() as redis:
        shared = {"redis_url": redis.url, **SETTINGS}
        async with (
            app_server(tmp_path, frozenset({Role.MONITOR}), **shared) as (m1, r1),
            app_server(tmp_path, frozenset({Role.MONITOR}), **shared) as (m2, r2),
        ):
            sockets: list[ClientConnection] = []
            try:
                for base in (m1, m2, m1, m2, m1, m2):
                    ws = await connect(ws_url(base), additional_headers=KEY)
                    sockets.append(ws)
                    assert (await next_message(ws))["type"] == "snapshot"
                await subscribed(r1, r2)
                bus = RedisBus(redis.url, name="test-agent")
                events = LiveEvents(bus)
                try:
                    sent = room_event(LiveKind.ENDED, "c_fanout", "agent-x", reason="agent_ended")
                    events.emit(sent)
                    for ws in sockets:
                        got = await until(ws, lambda m: m["type"] == "event")
                        assert got == {
                            "type": "event",
                            "kind": "ended",
                            "call_id": "c_fanout",
                            "at": sent.at,
                            "agent_id": "agent-x",
                            "detail": {"reason": "agent_ended"},
                        }
                finally:
                    await events.close()
                    await bus.close()
            finally:
                for ws in sockets:
                    await ws.close()


async def test_a_real_call_s_events_reach_both_replicas_and_reconnects_get_a_snapshot_first(
    tmp_path: Path,
) -> None:
    with RedisServer() as redis:
        shared = {"redis_url": redis.url, **SETTINGS}
        async with (
            app_server(tmp_path, frozenset({Role.LANDING, Role.AGENT}), **shared) as (base, _),
            app_server(tmp_path, frozenset({Role.MONITOR}), **shared) as (m1, r1),
            app_server(tmp_path, frozenset({Role.MONITOR}), **shared) as (m2, r2),
            connect(ws_url(m1), additional_headers=KEY) as one,
            connect(ws_url(m2), additional_headers=KEY) as two,
        ):
            for ws in (one, two):
                assert (await next_message(ws))["type"] == "snapshot"
            await subscribed(r1, r2)
            call = await greeted_call(base)
            for ws in (one, two):
                attached = await until(ws, lambda m: m["type"] == "event")
                assert (attached["kind"], attached["call_id"]) == ("attached", call.call_id)
                assert attached["agent_id"]
            await turn(call, 0.8, 1)
            for ws in (one, two):
                stored = await until(
                    ws, lambda m: m["type"] == "event" and m["detail"].get("seq") == 2
                )
                assert (stored["kind"], stored["detail"]["speaker"]) == ("turn", "agent")
                assert stored["detail"]["first_audio_sent"] > 0  # ms after the caller's speech

            # Reconnecting while events keep coming: a snapshot, then the stream.
            bus = RedisBus(redis.url, name="test-agent")
            events = LiveEvents(bus)
            done = asyncio.Event()

            async def keep_publishing() -> None:
                while not done.is_set():
                    events.emit(room_event(LiveKind.INTERRUPTION, call.call_id, "agent-x"))
                    await asyncio.sleep(0.005)

            publisher = asyncio.create_task(keep_publishing())
            try:
                for m in (m1, m2, m1, m2):
                    async with connect(ws_url(m), additional_headers=KEY) as again:
                        first = await next_message(again)
                        assert first["type"] == "snapshot"
                        assert [r["room_id"] for r in first["rooms"]] == [call.call_id]
                        await until(again, lambda m: m["type"] == "event")
            finally:
                done.set()
                await publisher
                await events.close()
                await bus.close()
            await call.end()
            await call.close()
