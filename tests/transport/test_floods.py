"""One client flooding its socket cannot starve the others: every frame counts
toward the socket's limits, bad frames close it after a few error replies, and
another call on the same process carries on, its room never re-queued."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from tests.support.calls import greeted_call, turn
from tests.support.cluster import PROFILES
from tests.support.server import ADMIN_KEY, app_server
from voxfleet.client import CallClient

pytestmark = pytest.mark.integration


@pytest.fixture
def profiles(tmp_path: Path) -> Path:
    """A short greeting and short replies: these tests are about frames, not talk."""
    path = tmp_path / "profiles.toml"
    path.write_text(PROFILES)
    return path


async def _flood(call: CallClient, frame: str | bytes, count: int) -> int:
    """Send ``count`` frames as fast as the socket takes them; how many went."""
    assert call.ws is not None
    sent = 0
    with contextlib.suppress(ConnectionClosed):
        for _ in range(count):
            await call.ws.send(frame)
            sent += 1
    return sent


async def _failovers(base: str) -> float:
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"{base}/metrics")).text
    for line in text.splitlines():
        if line.startswith("voxfleet_failovers_total "):
            return float(line.split()[1])
    return 0.0


@pytest.mark.parametrize(
    ("frame", "code", "reason"),
    [
        pytest.param("x", 1008, "protocol_error", id="bad-text"),
        pytest.param('{"type": "dance"}', 1008, "protocol_error", id="unknown-type"),
        pytest.param(b"\x00", 1008, "protocol_error", id="odd-audio"),
        pytest.param(b"\x00\x00" * 16, 4429, "flood", id="tiny-audio"),
    ],
)
async def test_a_frame_flood_closes_only_its_own_socket(
    tmp_path: Path, profiles: Path, frame: str | bytes, code: int, reason: str
) -> None:
    async with app_server(tmp_path, profiles_file=profiles) as (base, _runtime):
        victim = await greeted_call(base)
        failovers = await _failovers(base)
        flooder = CallClient(base, admin_key=ADMIN_KEY)
        await flooder.start()
        started = time.monotonic()
        await _flood(flooder, frame, 100_000)
        assert await flooder.closed() == (code, reason)
        assert time.monotonic() - started < 10
        # A handful of error replies, not one per frame.
        assert len(flooder.of_type("error")) <= 12
        assert (await flooder.get_call())["end_reason"] == reason
        # The other call goes on, on the same agent: its room was never re-queued.
        await turn(victim, 0.6, seq=1)
        assert await _failovers(base) == failovers
        await victim.end()
        await victim.close()


async def test_a_few_bad_frames_are_forgiven(tmp_path: Path, profiles: Path) -> None:
    async with app_server(tmp_path, profiles_file=profiles) as (base, _runtime):
        call = await greeted_call(base)
        assert call.ws is not None
        for _ in range(5):
            await call.ws.send("{nope")
        await turn(call, 0.6, seq=1)
        assert len([m for m in call.of_type("error") if m["code"] == "invalid_json"]) == 5
        await call.end()
        await call.close()


async def test_a_flooder_that_never_answers_our_close_is_cut_off(
    tmp_path: Path, profiles: Path
) -> None:
    """A raw client that floods bad frames and never reads or answers: the
    server closes it (1008) and drops the connection within about a second
    instead of reading its flood for the 10 s of uvicorn's closing handshake."""
    async with app_server(tmp_path, profiles_file=profiles) as (base, _runtime):
        call = CallClient(base, admin_key=ADMIN_KEY)
        data = await call.create()
        url = urlsplit(data["media_url"])
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET {url.path}?{url.query} HTTP/1.1\r\nHost: {url.netloc}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        assert b" 101 " in await reader.readuntil(b"\r\n\r\n")
        mask = os.urandom(4)
        frame = b"\x81\x81" + mask + bytes([ord("x") ^ mask[0]])  # text "x", masked
        gone = asyncio.get_running_loop().create_future()

        async def drain_until_closed() -> None:
            with contextlib.suppress(ConnectionError):  # a reset is a close too
                while await reader.read(65536):
                    pass
            gone.set_result(time.monotonic())

        watcher = asyncio.create_task(drain_until_closed())
        started = time.monotonic()
        with contextlib.suppress(ConnectionError):
            while not gone.done() and time.monotonic() - started < 8:
                writer.write(frame * 500)
                await writer.drain()
        await asyncio.wait_for(watcher, 10)
        writer.close()
        assert gone.result() - started < 5  # uvicorn's own handshake would read for 10 s
        assert (await call.get_call())["end_reason"] == "protocol_error"


async def test_audio_sockets_go_uncompressed(tmp_path: Path, profiles: Path) -> None:
    """The client offers permessage-deflate (websockets does by default); the
    server declines it: compressing PCM frames costs CPU on both ends per frame
    and saves next to nothing."""
    async with app_server(tmp_path, profiles_file=profiles) as (base, _runtime):
        call = await greeted_call(base)
        try:
            assert call.ws is not None
            offered = (
                call.ws.request.headers.get("Sec-WebSocket-Extensions") if call.ws.request else None
            )
            assert offered is not None and "permessage-deflate" in offered
            assert call.ws.response is not None
            assert call.ws.response.headers.get("Sec-WebSocket-Extensions") is None
            assert call.ws.protocol.extensions == []
            await turn(call, 0.5, 1)  # audio still flows both ways
        finally:
            await call.close()
