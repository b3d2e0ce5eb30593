"""A caller whose socket drops comes back to its call: same agent, same
history, no second greeting, on a resume URL that only that caller holds."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.support.calls import assert_every_reply_heard_whole, final, greeted_call, stored, turn
from tests.support.cluster import PROFILES
from tests.support.server import app_server
from voxfleet.client import CallClient
from voxfleet.domain.events import EventKind
from voxfleet.store import session_factory
from voxfleet.store.history import CallHistory

pytestmark = pytest.mark.integration


@pytest.fixture
def profiles(tmp_path: Path) -> Path:
    path = tmp_path / "profiles.toml"
    path.write_text(PROFILES)
    return path


async def _close_code(url: str) -> int | None:
    async with connect(url) as ws:
        with pytest.raises(ConnectionClosed):
            while True:
                await asyncio.wait_for(ws.recv(), 5)
        return ws.close_code


async def test_a_dropped_socket_resumes_the_call(tmp_path: Path, profiles: Path) -> None:
    async with app_server(tmp_path, profiles_file=profiles, resume_window_seconds=5.0) as (
        base,
        runtime,
    ):
        call = await greeted_call(base)
        await turn(call, 0.6, seq=1)
        first_resume = call.resume_url
        assert first_resume is not None and "resume=" in first_resume
        assert call.ws is not None
        call.ws.transport.abort()  # the network drops: no close frame
        readies = len(call.of_type("ready"))
        await call.wait_for(lambda m: m["type"] == "ready", start=_index_after(call, readies))
        assert call.reconnects == 1 and call.resume_url != first_resume
        await turn(call, 0.8, seq=3)  # the same call: its turn numbers go on
        assert [m["text"] for m in call.finals("agent")].count("Hi.") == 1
        await call.end()
        await call.wait_for(lambda m: m["type"] == "ended")
        await call.close()
        assert_every_reply_heard_whole(call)
        record = await stored(call, turns=5)
        assert record["end_reason"] == "caller_ended"
        assert [t["speaker"] for t in record["turns"]] == [
            "agent",
            "user",
            "agent",
            "user",
            "agent",
        ]
        assert runtime.engine is not None
        events = await CallHistory(session_factory(runtime.engine)).events(call.call_id)
        assert [e.kind for e in events] == [EventKind.RESUME]


def _index_after(call: CallClient, readies: int) -> int:
    """The index in ``call.messages`` just after its ``readies``-th ready."""
    seen = 0
    for i, m in enumerate(call.messages):
        if m["type"] == "ready":
            seen += 1
            if seen == readies:
                return i + 1
    return len(call.messages)


async def test_a_resume_url_opens_one_socket_and_only_for_its_call(
    tmp_path: Path, profiles: Path
) -> None:
    async with app_server(tmp_path, profiles_file=profiles, resume_window_seconds=5.0) as (
        base,
        _runtime,
    ):
        call = await greeted_call(base)
        other = await greeted_call(base)
        assert call.resume_url is not None and other.resume_url is not None
        # A second socket beside the live one, with the media URL or a stale resume URL.
        stale = call.resume_url
        assert call.ws is not None
        call.ws.transport.abort()
        await call.wait_for(lambda m: m["type"] == "ready", start=_index_after(call, 1))
        assert await _close_code(stale) == 4409  # replayed: that socket was taken over
        token = other.resume_url.split("resume=")[1]
        foreign = call.resume_url.split("?")[0] + f"?resume={token}"
        assert await _close_code(foreign) == 4403
        forged = call.resume_url.split("?")[0] + "?resume=abc.def"
        assert await _close_code(forged) == 4401
        await turn(call, 0.6, seq=1)  # and the call is untouched by all that
        for c in (call, other):
            await c.end()
            await c.wait_for(lambda m: m["type"] == "ended")
            await c.close()


async def test_a_caller_that_does_not_come_back_is_disconnected(
    tmp_path: Path, profiles: Path
) -> None:
    async with app_server(tmp_path, profiles_file=profiles, resume_window_seconds=1.0) as (
        base,
        _runtime,
    ):
        call = await greeted_call(base)
        call.reconnect = False
        assert call.ws is not None
        call.ws.transport.abort()
        await call.closed()
        async with asyncio.timeout(10):
            while (record := await call.get_call())["status"] != "ended":  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        assert record["end_reason"] == "caller_disconnected"
        assert call.resume_url is not None
        assert await _close_code(call.resume_url) == 4409  # too late: the call is over
        assert final("agent", 0)(call.finals("agent")[0])
