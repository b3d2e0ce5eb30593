"""PostgreSQL unreachable for a while under a live call: the call goes on, the
turns are buffered and written when the database is back, none lost."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.audio import silence, tone
from tests.support.postgres_server import PostgresServer
from tests.support.server import ADMIN_KEY, app_server
from voxfleet.client import CallClient

pytestmark = pytest.mark.integration


@pytest.fixture
def private_postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.remove()


def final(role: str, seq: int) -> Any:
    return lambda m: (
        m["type"] == "transcript" and m["role"] == role and m["final"] and (m["seq"] == seq)
    )


async def test_turns_spoken_while_the_database_is_down_are_kept(
    tmp_path: Path, private_postgres: PostgresServer
) -> None:
    async with app_server(tmp_path, database_url=private_postgres.url) as (base, runtime):
        call = CallClient(base)
        await call.start()
        await call.wait_for(final("agent", 0))
        await asyncio.to_thread(private_postgres.stop)
        for seq, seconds in ((1, 0.6), (3, 0.9)):
            await call.send_audio(tone(seconds) + silence(0.6))
            await call.wait_for(final("agent", seq + 1), timeout=20)
        await call.end()
        await call.wait_for(lambda m: m["type"] == "ended")
        assert runtime.sink.pending > 0 or not await runtime.sink.flush(0.2)
        await asyncio.to_thread(private_postgres.start)
        async with httpx.AsyncClient() as http:
            for _ in range(200):
                r = await http.get(
                    f"{base}/api/calls/{call.call_id}",
                    # An ended call's record: the admin key (the read token reads live calls).
                    headers={"Authorization": f"Bearer {ADMIN_KEY}"},
                )
                if r.status_code == 200:
                    record = r.json()
                    if record["status"] == "ended" and len(record["turns"]) == 5:
                        break
                await asyncio.sleep(0.1)
        await call.close()
    assert record["end_reason"] == "caller_ended"
    texts = [(t["speaker"], t["text"]) for t in record["turns"]]
    assert [s for s, _ in texts] == ["agent", "user", "agent", "user", "agent"]
    assert texts[1][1] == "utterance 0.6 seconds" and texts[3][1] == "utterance 0.9 seconds"
