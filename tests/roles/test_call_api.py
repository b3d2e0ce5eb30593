"""The public call API over real HTTP and WebSocket, with scripted providers:
a whole call, and every kind of bad input the protocol names."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.audio import silence, tone
from tests.support.calls import stored
from tests.support.server import ADMIN_KEY, app_server
from voxfleet.client import CallClient

pytestmark = pytest.mark.integration


async def test_a_whole_call_is_answered_and_recorded(tmp_path: Path) -> None:
    async with app_server(tmp_path) as (base, _runtime):
        call = CallClient(base, admin_key=ADMIN_KEY)
        await call.start()
        assert call.ready is not None and call.ready["sample_rate"] == 16000
        await call.wait_for(
            lambda m: m["type"] == "transcript" and m["role"] == "agent" and m["final"]
        )
        await call.send_audio(tone(0.8) + silence(0.6))
        await call.wait_for(
            lambda m: (
                m["type"] == "transcript" and m["role"] == "agent" and m["final"] and m["seq"] == 2
            )
        )
        assert call.audio, "agent audio frames arrive as binary messages"
        await call.end()
        await call.wait_for(lambda m: m["type"] == "ended")
        assert await call.closed() == (1000, "caller_ended")
        record = await stored(call, turns=3)
    assert record["status"] == "ended" and record["end_reason"] == "caller_ended"
    speakers = [t["speaker"] for t in record["turns"]]
    assert speakers == ["agent", "user", "agent"]
    assert record["turns"][1]["text"] == "utterance 0.8 seconds"
    marks = record["turns"][2]["latency_ms"]
    assert set(marks) == {"stt_done", "llm_first_token", "tts_first_audio", "first_audio_sent"}
    assert 0 <= marks["stt_done"] <= marks["llm_first_token"] <= marks["first_audio_sent"]


async def test_create_call_rejects_bad_bodies(tmp_path: Path) -> None:
    async with app_server(tmp_path) as (base, _runtime), httpx.AsyncClient() as http:
        bad_json = await http.post(
            f"{base}/api/calls", content=b"{nope", headers={"Content-Type": "application/json"}
        )
        assert bad_json.status_code == 400
        assert bad_json.json()["error"]["code"] == "invalid_json"
        not_object = await http.post(f"{base}/api/calls", json=["default"])
        assert not_object.status_code == 422
        wrong_type = await http.post(f"{base}/api/calls", json={"profile": 7})
        assert wrong_type.status_code == 422
        assert wrong_type.json()["error"]["field"] == "profile"
        extra = await http.post(f"{base}/api/calls", json={"profle": "default"})
        assert extra.status_code == 422 and extra.json()["error"]["field"] == "profle"
        unknown = await http.post(f"{base}/api/calls", json={"profile": "pirate"})
        assert unknown.status_code == 422
        body = unknown.json()["error"]
        assert body["code"] == "unknown_profile" and "pirate" in body["message"]
        missing = await http.get(
            f"{base}/api/calls/c_nopenopenopenope", headers={"Authorization": f"Bearer {ADMIN_KEY}"}
        )
        assert missing.status_code == 404
        ok = await http.post(f"{base}/api/calls", json={"profile": "barista"})
        assert ok.status_code == 201 and ok.json()["profile"] == "barista"
        assert ok.json()["media_url"].startswith("ws://127.0.0.1:")


async def _expect_close(url: str) -> tuple[int | None, str | None]:
    async with connect(url) as ws:
        with pytest.raises(ConnectionClosed):
            while True:
                await asyncio.wait_for(ws.recv(), 5)
        return ws.close_code, ws.close_reason


async def test_socket_rejects_missing_bad_foreign_and_reused_tokens(tmp_path: Path) -> None:
    async with app_server(tmp_path) as (base, runtime):
        first, second = CallClient(base, admin_key=ADMIN_KEY), CallClient(base, admin_key=ADMIN_KEY)
        a = await first.create()
        b = await second.create()
        ws_base = base.replace("http", "ws")
        assert (await _expect_close(f"{ws_base}/ws/calls/{a['id']}"))[0] == 4400
        assert (await _expect_close(f"{ws_base}/ws/calls/{a['id']}?token=abc.def"))[0] == 4401
        token_b = b["media_url"].split("token=")[1]
        code, reason = await _expect_close(f"{ws_base}/ws/calls/{a['id']}?token={token_b}")
        assert code == 4403 and reason is not None and "another call" in reason
        old, _exp = runtime.landing.tokens.issue(a["id"], now=0.0)
        code, reason = await _expect_close(f"{ws_base}/ws/calls/{a['id']}?token={old}")
        assert code == 4401 and reason is not None and "expired" in reason
        forged, _exp = runtime.landing.tokens.issue("c_unknown", now=10**10)
        assert (await _expect_close(f"{ws_base}/ws/calls/c_unknown?token={forged}"))[0] == 4404
        await first.connect(a["media_url"])
        assert (await _expect_close(a["media_url"]))[0] == 4409  # already connected
        await first.close()
        async with asyncio.timeout(10):  # the edge records the end after the close handshake
            while (record := await first.get_call())["status"] != "ended":  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        assert record["end_reason"] == "caller_disconnected"
        assert (await _expect_close(a["media_url"]))[0] == 4409  # already ended


async def test_bad_frames_get_errors_and_the_call_goes_on(tmp_path: Path) -> None:
    async with app_server(tmp_path) as (base, _runtime):
        call = CallClient(base, admin_key=ADMIN_KEY)
        data = await call.create()
        await call.connect(data["media_url"], wait_ready=False)
        ws = call.ws
        assert ws is not None
        await ws.send(b"\x00\x00" * 10)  # before ready
        await call.wait_for(lambda m: m["type"] == "error" and m["code"] == "not_ready")
        await call.wait_for(lambda m: m["type"] == "ready")
        await ws.send("{not json")
        await ws.send('["a list"]')
        await ws.send('{"type": "dance"}')
        await ws.send(b"\x00\x00\x00")  # odd byte count
        await ws.send(b"\x00\x00" * 3201)  # 200.06 ms
        await ws.send("x" * 5000)
        await ws.send("[" * 3000 + "]" * 1000)  # nested deeper than the parser goes
        for code in (
            "invalid_json",
            "unknown_type",
            "bad_audio_frame",
            "frame_too_long",
            "message_too_long",
        ):
            await call.wait_for(lambda m, c=code: m["type"] == "error" and m["code"] == c)
        await call.wait_for(
            lambda m: m["type"] == "error" and "recursion" in m.get("message", ""), timeout=5
        )
        assert len([m for m in call.of_type("error") if m["code"] == "invalid_json"]) == 3
        # The call still works after all that.
        await call.send_audio(tone(0.6) + silence(0.6))
        await call.wait_for(
            lambda m: m["type"] == "transcript" and m["role"] == "user" and m["final"]
        )
        await call.close()


async def test_flood_ends_the_call_with_4429_and_spares_other_calls(tmp_path: Path) -> None:
    async with app_server(tmp_path) as (base, _runtime):
        calm, flood = CallClient(base, admin_key=ADMIN_KEY), CallClient(base, admin_key=ADMIN_KEY)
        await calm.start()
        await flood.start()
        assert flood.ws is not None
        frame = b"\x00\x00" * 3200  # 200 ms
        with contextlib.suppress(ConnectionClosed):  # the server may close mid-burst
            for _ in range(100):  # 20 s of audio at once
                await flood.ws.send(frame)
        code, reason = await flood.closed()
        assert (code, reason) == (4429, "flood")
        assert any(m["type"] == "error" and m["code"] == "flood" for m in flood.messages)
        assert (await flood.get_call())["end_reason"] == "flood"
        await calm.send_audio(tone(0.6) + silence(0.6))
        await calm.wait_for(
            lambda m: m["type"] == "transcript" and m["role"] == "user" and m["final"]
        )
        await calm.close()


async def test_abrupt_disconnect_ends_the_call_and_keeps_its_turns(tmp_path: Path) -> None:
    async with app_server(tmp_path) as (base, runtime):
        # A client that does not come back.
        call = CallClient(base, admin_key=ADMIN_KEY, reconnect=False)
        await call.start()
        await call.send_audio(tone(0.6) + silence(0.6))
        await call.wait_for(
            lambda m: m["type"] == "transcript" and m["role"] == "user" and m["final"]
        )
        assert call.ws is not None
        call.ws.transport.abort()  # no close frame
        await call.closed()
        async with asyncio.timeout(10):
            while (await call.get_call())["status"] != "ended":  # noqa: ASYNC110 - polls the API
                await asyncio.sleep(0.05)
        await runtime.sink.flush()
        record = await call.get_call()
    assert record["end_reason"] == "caller_disconnected"
    assert [t["text"] for t in record["turns"] if t["speaker"] == "user"] == [
        "utterance 0.6 seconds"
    ]
