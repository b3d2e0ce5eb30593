"""An agent worker with ``VOXFLEET_TRANSPORT=livekit`` claims a room and joins
its LiveKit room through the real SDK; here the server cannot be reached (no
LiveKit server runs on this machine, none is installable here), so the worker
gives the room back for a retry, as on a Redis blip, and goes on claiming.
Serving a room over LiveKit is tested without a server in
test_session.py and against one by ``scripts/livekit-smoke``."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from pydantic import SecretStr

from tests.pipeline.test_session import ListSink, profile, providers
from voxfleet.dispatch.base import RoomJob
from voxfleet.domain.profiles import Profiles
from voxfleet.roles.agent import AgentConfig, AgentWorker
from voxfleet.roles.backends import build_backends
from voxfleet.settings import Settings
from voxfleet.store import CallStore, create_engine, migrate, session_factory

pytestmark = pytest.mark.integration


async def test_a_livekit_server_out_of_reach_leaves_the_room_for_a_retry(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        providers="scripted",
        transport="livekit",
        livekit_url="ws://127.0.0.1:9",  # nothing listens on the discard port
        livekit_api_key="APIkey",
        livekit_api_secret=SecretStr("a-livekit-api-secret-of-32-chars!"),
    )
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'voxfleet.db'}")
    await migrate(engine)
    calls = CallStore(session_factory(engine))
    await calls.create_call("c1", "test", time.time())
    backends = build_backends(settings)
    worker = AgentWorker(
        providers(),
        Profiles({"test": profile()}, "test"),
        backends,
        ListSink(),
        calls,
        AgentConfig(capacity=1, agent_id="a1", livekit=settings),
    )
    await backends.queue.put(RoomJob(room_id="c1", profile="test", enqueued_at=time.time()))
    running = asyncio.create_task(worker.run(), name="worker")
    try:
        async with asyncio.timeout(10):
            # Taken (its state saved), then given back (nobody holds it).
            while await backends.directory.load_state("c1") is None:  # noqa: ASYNC110 - a poll
                await asyncio.sleep(0.02)
            while await backends.directory.holder("c1") or worker.rooms:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        assert worker.ready and not running.done()
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await backends.close()
        await engine.dispose()
