"""The landing with LiveKit as the transport, over real HTTP: the caller's join
token (read back with livekit-api's TokenVerifier) names its call's room only,
the room is queued for an agent, and LiveKit's webhooks, built and signed with
livekit-api's own code, end the call, unless forged, tampered, stale or replayed."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from livekit.api import TokenVerifier
from livekit.protocol.models import DisconnectReason
from livekit.protocol.webhook import WebhookEvent

from tests.support.livekit import KEY, LIVEKIT, SECRET, event, signed
from tests.support.redis_server import RedisServer
from tests.support.server import ADMIN_KEY, app_server
from voxfleet.bus.base import room_up
from voxfleet.messages.room import Hangup, decode_up
from voxfleet.roles.runtime import Role

pytestmark = pytest.mark.integration
LANDING = frozenset({Role.LANDING})
HOOK = "/api/livekit/webhook"


async def _call(http: httpx.AsyncClient, call_id: str) -> dict[str, object]:
    r = await http.get(f"/api/calls/{call_id}", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    data: dict[str, object] = r.json()
    return data


async def _hook(http: httpx.AsyncClient, ev: WebhookEvent) -> httpx.Response:
    body, headers = signed(ev)
    return await http.post(HOOK, content=body, headers=headers)


async def test_a_livekit_call_gets_a_token_for_its_room_only(tmp_path: Path) -> None:
    async with (
        app_server(tmp_path, roles=LANDING, **LIVEKIT) as (base, runtime),
        httpx.AsyncClient(base_url=base) as http,
    ):
        first = (await http.post("/api/calls", json={})).json()
        second = (await http.post("/api/calls", json={})).json()
        schema = (await http.get("/openapi.json")).json()["components"]["schemas"]
        queued = [await runtime.backends.queue.take("test", timeout=1.0) for _ in range(2)]
    assert first["media_url"] is None  # no socket: the media goes to LiveKit
    join = first["livekit"]
    assert (join["url"], join["room"]) == ("wss://lk.example.com", first["id"])
    assert join["token_expires_at"] == first["token_expires_at"]
    claims = TokenVerifier(KEY, SECRET).verify(join["token"])
    assert claims.identity == "caller" and claims.video is not None
    assert (claims.video.room, claims.video.room_join) == (first["id"], True)
    assert claims.video.can_publish_sources == ["microphone"]
    assert not claims.video.can_publish_data and not claims.video.room_admin
    other = TokenVerifier(KEY, SECRET).verify(second["livekit"]["token"])
    assert other.video is not None and other.video.room == second["id"] != first["id"]
    assert [job.room_id for job in queued if job] == [first["id"], second["id"]]
    assert "LiveKitJoin" in schema and "livekit" in schema["CallCreated"]["properties"]


async def test_the_caller_leaving_ends_the_call_and_tells_the_agent(tmp_path: Path) -> None:
    async with (
        app_server(tmp_path, roles=LANDING, **LIVEKIT) as (base, runtime),
        httpx.AsyncClient(base_url=base) as http,
    ):
        call_id = (await http.post("/api/calls", json={})).json()["id"]
        up = await runtime.backends.bus.subscribe(room_up(call_id))
        body, headers = signed(event("participant_joined", call_id, "caller"))
        joined = await http.post(HOOK, content=body, headers=headers)
        assert joined.json()["action"] == "call_active"
        assert (await _call(http, call_id))["status"] == "active"
        body, headers = signed(event("participant_left", call_id, "caller"))
        left = await http.post(HOOK, content=body, headers=headers)
        assert (left.status_code, left.json()["action"]) == (200, "call_ended")
        hangup = decode_up(await up.get(timeout=5.0) or b"").message
        await up.close()
        record = await _call(http, call_id)
        again = signed(event("room_finished", call_id))
        finished = await http.post(HOOK, content=again[0], headers=again[1])
    assert isinstance(hangup, Hangup) and hangup.reason == "caller_ended"
    assert (record["status"], record["end_reason"]) == ("ended", "caller_ended")
    assert finished.json()["action"] == "ignored"  # already over: nothing more to do


async def test_room_finished_ends_a_call_and_unknown_rooms_are_ignored(tmp_path: Path) -> None:
    async with (
        app_server(tmp_path, roles=LANDING, **LIVEKIT) as (base, _runtime),
        httpx.AsyncClient(base_url=base) as http,
    ):
        call_id = (await http.post("/api/calls", json={})).json()["id"]
        dropped = event(
            "participant_left", call_id, "agent-x", reason=DisconnectReason.CONNECTION_TIMEOUT
        )
        for ev in (event("room_finished", "c_AAAAAAAAAAAAAAAA"), event("room_finished", "lobby")):
            body, headers = signed(ev)
            r = await http.post(HOOK, content=body, headers=headers)
            assert (r.status_code, r.json()["action"]) == (200, "ignored")
        body, headers = signed(dropped)  # an agent leaving is not the caller hanging up
        assert (await http.post(HOOK, content=body, headers=headers)).json()["action"] == "ignored"
        body, headers = signed(event("room_finished", call_id))
        assert (await http.post(HOOK, content=body, headers=headers)).json()[
            "action"
        ] == "call_ended"
        record = await _call(http, call_id)
    assert (record["status"], record["end_reason"]) == ("ended", "caller_disconnected")


async def test_forged_tampered_stale_and_replayed_webhooks_are_refused(tmp_path: Path) -> None:
    async with (
        app_server(tmp_path, roles=LANDING, **LIVEKIT) as (base, _runtime),
        httpx.AsyncClient(base_url=base) as http,
    ):
        call_id = (await http.post("/api/calls", json={})).json()["id"]

        async def refused(body: str, headers: dict[str, str]) -> tuple[int, str, str]:
            r = await http.post(HOOK, content=body, headers=headers)
            error = r.json()["error"]
            return r.status_code, error["code"], error["message"]

        left = event("participant_left", call_id, "caller")
        body, headers = signed(left)
        assert await refused(body, {}) == (
            401,
            "webhook_unsigned",
            "authorization: missing; LiveKit signs each webhook with the API key's secret",
        )
        forged = signed(left, secret="not-the-secret-of-this-livekit-key")
        assert (await refused(*forged))[:2] == (401, "webhook_signature")
        assert "another API secret" in (await refused(*forged))[2]
        assert (await refused(body, {"Authorization": "not-a-jwt"}))[:2] == (
            401,
            "webhook_signature",
        )
        tampered = body.replace(call_id, "c_BBBBBBBBBBBBBBBB")
        assert (await refused(tampered, headers))[:2] == (401, "webhook_tampered")
        stale = signed(event("participant_left", call_id, "caller", age=301))
        code, message = (await refused(*stale))[1:]
        assert code == "webhook_stale" and "older than 300 s" in message
        assert (await http.post(HOOK, content=body, headers=headers)).status_code == 200
        code, message = (await refused(body, headers))[1:]
        assert code == "webhook_replayed" and "already taken" in message
        record = await _call(http, call_id)
        metrics = (await http.get("/metrics")).text
    assert record["end_reason"] == "caller_ended"  # only the genuine webhook counted
    for outcome in ("webhook_unsigned", "webhook_tampered", "webhook_replayed", "call_ended"):
        assert f'voxfleet_livekit_webhooks_total{{outcome="{outcome}"}}' in metrics


async def test_a_webhook_replayed_to_another_replica_is_refused(tmp_path: Path) -> None:
    with RedisServer() as redis:
        shared = {"redis_url": redis.url, "roles": LANDING, **LIVEKIT}
        async with (
            app_server(tmp_path / "a", **shared) as (first, _a),
            app_server(tmp_path / "b", **shared) as (second, _b),
            httpx.AsyncClient(base_url=first) as one,
            httpx.AsyncClient(base_url=second) as two,
        ):
            body, headers = signed(event("room_finished", "lobby"))
            assert (await one.post(HOOK, content=body, headers=headers)).status_code == 200
            again = await two.post(HOOK, content=body, headers=headers)
    assert (again.status_code, again.json()["error"]["code"]) == (401, "webhook_replayed")


async def test_without_livekit_there_is_no_webhook_route(tmp_path: Path) -> None:
    async with (
        app_server(tmp_path, roles=LANDING) as (base, _runtime),
        httpx.AsyncClient(base_url=base) as http,
    ):
        created = (await http.post("/api/calls", json={})).json()
        body, headers = signed(event("room_finished", created["id"]))
        r = await http.post(HOOK, content=body, headers=headers)
    assert created["livekit"] is None and created["media_url"].startswith("ws://")
    assert r.status_code == 404


async def test_the_page_may_reach_livekit_and_loads_its_bundle_locally(tmp_path: Path) -> None:
    async with (
        app_server(tmp_path, roles=LANDING, **LIVEKIT) as (base, _runtime),
        httpx.AsyncClient(base_url=base) as http,
    ):
        csp = (await http.get("/")).headers["content-security-policy"]
        page_link = (await http.get("/static/call-livekit.js")).text
        bundle = await http.get("/static/vendor/livekit-client.esm.js")
    assert "wss://lk.example.com https://lk.example.com" in csp
    assert "script-src 'self';" in csp  # the bundle is ours to serve: no CDN, no eval
    assert "./vendor/livekit-client.esm.js" in page_link and "'voxfleet'" in page_link
    assert bundle.status_code == 200 and "javascript" in bundle.headers["content-type"]
    assert not re.search(r"\beval\(|new Function\(|setAttribute\(['\"]style", bundle.text)
    assert "as RoomEvent" in bundle.text  # the names the page imports are exported
