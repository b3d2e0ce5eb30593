"""CallStore against real databases (SQLite and PostgreSQL), and how it reports database
outages."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from voxfleet.domain.calls import CallStatus, EndReason, LatencyMarks, Speaker, ToolUse, Turn
from voxfleet.errors import NotFound, StoreUnavailable, VoxfleetError
from voxfleet.store import CallRecord, CallStore, create_engine, migrate, session_factory
from voxfleet.store.db import translate_unavailable
from voxfleet.store.models import CallRow, TurnRow

pytestmark = pytest.mark.integration

T0 = 1_717_000_000.0  # 2024-05-29, an instant with an exact float


def turn(
    seq: int,
    text: str = "hello",
    *,
    call_id: str = "c_1",
    interrupted: bool = False,
    marks: LatencyMarks | None = None,
) -> Turn:
    return Turn(
        call_id=call_id,
        seq=seq,
        speaker=Speaker.AGENT if seq % 2 == 0 else Speaker.USER,
        text=text,
        started_at=T0 + seq,
        ended_at=T0 + seq + 0.5,
        interrupted=interrupted,
        marks=marks or LatencyMarks(),
    )


async def test_create_then_get_round_trips(store: CallStore) -> None:
    await store.create_call("c_1", "default", created_at=T0 + 0.25)

    assert await store.get_call("c_1") == CallRecord(
        id="c_1",
        profile="default",
        status=CallStatus.CREATED,
        created_at=T0 + 0.25,
        started_at=None,
        ended_at=None,
        end_reason=None,
        turns=[],
    )


async def test_get_unknown_call_returns_none(store: CallStore) -> None:
    await store.create_call("c_1", "default", T0)

    assert await store.get_call("c_nope") is None


async def test_create_existing_call_is_a_conflict(store: CallStore) -> None:
    await store.create_call("c_1", "default", T0)

    with pytest.raises(VoxfleetError) as raised:
        await store.create_call("c_1", "other", T0 + 1)

    assert raised.value.code == "conflict"
    record = await store.get_call("c_1")
    assert record is not None
    assert record.profile == "default"


async def test_mark_active_only_from_created(store: CallStore) -> None:
    await store.create_call("c_1", "default", T0)

    assert await store.mark_active("c_1", at=T0 + 1) is True
    assert await store.mark_active("c_1", at=T0 + 2) is False
    assert await store.mark_active("c_unknown", at=T0 + 2) is False

    record = await store.get_call("c_1")
    assert record is not None
    assert (record.status, record.started_at) == (CallStatus.ACTIVE, T0 + 1)


async def test_mark_active_does_not_reopen_an_ended_call(store: CallStore) -> None:
    await store.create_call("c_1", "default", T0)
    await store.end_call("c_1", EndReason.NEVER_CONNECTED, at=T0 + 1)

    assert await store.mark_active("c_1", at=T0 + 2) is False

    record = await store.get_call("c_1")
    assert record is not None
    assert (record.status, record.started_at) == (CallStatus.ENDED, None)


async def test_end_call_is_idempotent_and_keeps_the_first_reason(store: CallStore) -> None:
    await store.create_call("c_1", "default", T0)
    await store.mark_active("c_1", T0 + 1)

    assert await store.end_call("c_1", EndReason.CALLER_ENDED, at=T0 + 9) is True
    assert await store.end_call("c_1", EndReason.SERVER_SHUTDOWN, at=T0 + 20) is False
    assert await store.end_call("c_unknown", EndReason.CALLER_ENDED, at=T0) is False

    record = await store.get_call("c_1")
    assert record is not None
    assert (record.status, record.end_reason, record.ended_at) == (
        CallStatus.ENDED,
        EndReason.CALLER_ENDED,
        T0 + 9,
    )
    assert record.started_at == T0 + 1


async def test_concurrent_end_calls_have_exactly_one_winner(store: CallStore) -> None:
    await store.create_call("c_1", "default", T0)

    won = await asyncio.gather(
        store.end_call("c_1", EndReason.CALLER_ENDED, at=T0 + 1),
        store.end_call("c_1", EndReason.MAX_DURATION, at=T0 + 2),
    )

    assert sorted(won) == [False, True]
    winner = EndReason.CALLER_ENDED if won[0] else EndReason.MAX_DURATION
    record = await store.get_call("c_1")
    assert record is not None
    assert record.end_reason == winner


async def test_add_turn_again_with_the_same_seq_replaces_it(store: CallStore) -> None:
    await store.create_call("c_1", "default", T0)
    await store.add_turn(turn(0, "We open at", interrupted=True))

    await store.add_turn(turn(0, "We open at 7 am.", marks=LatencyMarks(speech_end=T0)))

    record = await store.get_call("c_1")
    assert record is not None
    assert record.turns == [turn(0, "We open at 7 am.", marks=LatencyMarks(speech_end=T0))]


async def test_a_turn_keeps_the_tools_it_called(store: CallStore) -> None:
    await store.create_call("c_1", "default", T0)
    used = [
        ToolUse("lookup", {"query": "opening hours"}, "Opening hours: 7 to 6."),
        ToolUse("end_call", {}, "The call will end after this reply. Say goodbye."),
    ]
    await store.add_turn(replace(turn(0, "We open at 7. Goodbye!"), tools=used))

    record = await store.get_call("c_1")
    assert record is not None and record.turns[0].tools == used


async def test_turns_come_back_ordered_by_seq(store: CallStore) -> None:
    await store.create_call("c_1", "default", T0)
    await store.create_call("c_2", "default", T0)
    for seq in (2, 0, 10, 1):
        await store.add_turn(turn(seq, f"turn {seq}"))
    await store.add_turn(turn(3, "another call", call_id="c_2"))

    record = await store.get_call("c_1")

    assert record is not None
    assert [t.seq for t in record.turns] == [0, 1, 2, 10]
    assert [t.text for t in record.turns] == ["turn 0", "turn 1", "turn 2", "turn 10"]


async def test_latency_marks_round_trip_to_the_microsecond(store: CallStore) -> None:
    marks = LatencyMarks(
        speech_end=T0 + 0.000001,
        stt_done=T0 + 0.212401,
        llm_first_token=T0 + 0.301999,
        tts_first_audio=None,
        first_audio_sent=T0 + 0.999999,
    )
    await store.create_call("c_1", "default", T0 + 0.123456)
    await store.add_turn(turn(0, marks=marks))

    record = await store.get_call("c_1")

    assert record is not None
    assert record.created_at == T0 + 0.123456
    assert record.turns[0].marks == marks
    assert record.turns[0].marks.as_ms_from_speech_end() == {
        "stt_done": 212.4,
        "llm_first_token": 302.0,
        "first_audio_sent": 1000.0,
    }


async def test_times_finer_than_a_microsecond_round_to_the_nearest(store: CallStore) -> None:
    await store.create_call("c_1", "default", T0 + 0.1234567)

    record = await store.get_call("c_1")

    assert record is not None
    assert record.created_at == T0 + 0.123457


@pytest.fixture
def local_time_zone_utc_plus_14(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "XYZ-14")  # POSIX spelling of UTC+14; needs no tzdata
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("local_time_zone_utc_plus_14")
async def test_times_do_not_depend_on_the_local_time_zone(store: CallStore) -> None:
    await store.create_call("c_1", "default", T0)
    await store.end_call("c_1", EndReason.CALLER_ENDED, at=T0 + 60)

    record = await store.get_call("c_1")

    assert record is not None
    assert (record.created_at, record.ended_at) == (T0, T0 + 60)


async def test_list_calls_newest_first_within_the_limit(store: CallStore) -> None:
    for i, created_at in enumerate((T0 + 5, T0 + 1, T0 + 9, T0 + 3)):
        await store.create_call(f"c_{i}", "default", created_at)
    await store.add_turn(turn(0, call_id="c_2"))

    calls = await store.list_calls(limit=3)

    assert [(c.id, c.created_at) for c in calls] == [
        ("c_2", T0 + 9),
        ("c_0", T0 + 5),
        ("c_3", T0 + 3),
    ]
    assert all(c.turns == [] for c in calls)
    assert len(await store.list_calls()) == 4


async def test_list_calls_rejects_a_limit_below_one(store: CallStore) -> None:
    with pytest.raises(ValueError, match="limit"):
        await store.list_calls(limit=0)


async def test_end_stale_calls_ends_only_old_unconnected_calls(store: CallStore) -> None:
    await store.create_call("old_created", "default", T0)
    await store.create_call("old_active", "default", T0)
    await store.mark_active("old_active", T0 + 1)
    await store.create_call("old_ended", "default", T0)
    await store.end_call("old_ended", EndReason.CALLER_ENDED, T0 + 2)
    await store.create_call("new_created", "default", T0 + 120)

    ended = await store.end_stale_calls(EndReason.NEVER_CONNECTED, at=T0 + 200, older_than=T0 + 120)

    assert ended == 1
    states = {c.id: (c.status, c.end_reason, c.ended_at) for c in await store.list_calls()}
    assert states == {
        "old_created": (CallStatus.ENDED, EndReason.NEVER_CONNECTED, T0 + 200),
        "old_active": (CallStatus.ACTIVE, None, None),
        "old_ended": (CallStatus.ENDED, EndReason.CALLER_ENDED, T0 + 2),
        "new_created": (CallStatus.CREATED, None, None),
    }
    assert await store.end_stale_calls(EndReason.NEVER_CONNECTED, T0 + 300, T0 + 120) == 0


async def test_deleting_a_call_deletes_its_turns(store: CallStore, engine: AsyncEngine) -> None:
    await store.create_call("c_1", "default", T0)
    await store.create_call("c_2", "default", T0)
    await store.add_turn(turn(0))
    await store.add_turn(turn(1))
    await store.add_turn(turn(0, call_id="c_2"))

    sessions = session_factory(engine)
    async with sessions.begin() as session:
        await session.execute(delete(CallRow).where(CallRow.id == "c_1"))
    async with sessions() as session:
        left = await session.execute(
            select(TurnRow.call_id, func.count()).group_by(TurnRow.call_id)
        )
        assert left.all() == [("c_2", 1)]


async def test_add_turn_for_an_unknown_call_is_not_found(store: CallStore) -> None:
    with pytest.raises(NotFound, match="c_nope"):
        await store.add_turn(turn(0, call_id="c_nope"))


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_unreachable_database_raises_store_unavailable(backend: str, tmp_path: Path) -> None:
    # SQLite cannot open a directory as its file; nothing listens on port 1.
    url = {
        "sqlite": f"sqlite+aiosqlite:///{tmp_path}",
        "postgresql": "postgresql+asyncpg://postgres@127.0.0.1:1/test",
    }[backend]
    engine = create_engine(url)
    try:
        store = CallStore(session_factory(engine))
        with pytest.raises(StoreUnavailable) as raised:
            await store.get_call("c_1")
        assert raised.value.retryable
        with pytest.raises(StoreUnavailable):
            await migrate(engine)
    finally:
        await engine.dispose()
        await _join_aiosqlite_workers()


class FakePostgresError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("sqlstate", "unavailable"),
    [
        ("53300", True),  # too_many_connections
        ("57P01", True),  # admin_shutdown: a failover
        ("57P03", True),  # cannot_connect_now: the server is starting
        ("08006", True),  # connection_failure
        ("23505", False),  # unique_violation: a bug, not an outage
        ("42P01", False),  # undefined_table
    ],
)
def test_postgres_errors_that_mean_not_now_are_store_unavailable(
    sqlstate: str, unavailable: bool
) -> None:
    error = DBAPIError("SELECT 1", None, FakePostgresError(sqlstate))

    with pytest.raises(StoreUnavailable if unavailable else DBAPIError), translate_unavailable():
        raise error


async def test_connections_the_server_killed_are_replaced(
    postgres_url: str, postgres_server: str
) -> None:
    engine = create_engine(postgres_url)
    try:
        await migrate(engine)
        store = CallStore(session_factory(engine))
        await store.create_call("c_1", "default", T0)  # leaves a connection in the pool
        admin = await asyncpg.connect(postgres_server)
        try:
            killed = await admin.fetchval(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000))"
                " FROM pg_stat_activity WHERE datname = $1",
                make_url(postgres_url).database,
            )
        finally:
            await admin.close()

        assert killed >= 1
        assert await store.get_call("c_1") is not None
    finally:
        await engine.dispose()


async def _join_aiosqlite_workers() -> None:
    """Wait for the worker threads of failed aiosqlite connections to end.

    After a failed connect, aiosqlite stops its worker thread without waiting for
    it; the thread then reports to the event loop, which pytest may have closed.
    """
    for thread in threading.enumerate():
        if thread.name.endswith("(_connection_worker_thread)"):
            await asyncio.to_thread(thread.join, 5)
