"""CallHistory against real databases (SQLite and PostgreSQL): call events
round-trip in time order; each filter narrows the list; keyset paging walks
every call once; the export reads calls with their turns."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from voxfleet.domain.calls import EndReason, Speaker, Turn
from voxfleet.domain.events import CallEvent, EventKind
from voxfleet.errors import NotFound
from voxfleet.roles.sink import StoreTurnSink
from voxfleet.store import CallStore, session_factory
from voxfleet.store.history import CallHistory, HistoryFilter

pytestmark = pytest.mark.integration

T0 = 1_717_000_000.0


@pytest.fixture
def history(store: CallStore, engine: AsyncEngine) -> CallHistory:
    return CallHistory(session_factory(engine))


async def add_call(
    store: CallStore, call_id: str, at: float, *, profile: str = "default", said: str = "hi"
) -> None:
    await store.create_call(call_id, profile, created_at=at)
    await store.add_turn(Turn(call_id, 0, Speaker.USER, said, at, at + 1))


def ids(entries: list[object]) -> list[str]:
    return [entry.call.id for entry in entries]  # type: ignore[attr-defined]


async def test_events_round_trip_in_time_order(store: CallStore, history: CallHistory) -> None:
    await add_call(store, "c_1", T0)
    await history.add_event(CallEvent("c_1", T0 + 2, EventKind.FAILOVER, {"agent": "b"}))
    await history.add_event(CallEvent("c_1", T0 + 1, EventKind.INTERRUPTION))

    assert await history.events("c_1") == [
        CallEvent("c_1", T0 + 1, EventKind.INTERRUPTION, {}),
        CallEvent("c_1", T0 + 2, EventKind.FAILOVER, {"agent": "b"}),
    ]
    with pytest.raises(NotFound):
        await history.add_event(CallEvent("c_missing", T0, EventKind.RESUME))


async def test_the_agent_sink_writes_events_beside_turns(
    store: CallStore, history: CallHistory
) -> None:
    await store.create_call("c_1", "default", created_at=T0)
    sink = StoreTurnSink(store, max_backoff=0.01, history=history)
    sink.start()
    try:
        await sink.record(Turn("c_1", 0, Speaker.AGENT, "Hi.", T0, T0 + 1))
        await sink.event(CallEvent("c_1", T0 + 0.5, EventKind.INTERRUPTION, {"seq": 0}))
        await sink.event(CallEvent("c_gone", T0, EventKind.RESUME))  # dropped, not retried
        await sink.event(CallEvent("c_1", T0 + 2, EventKind.HANDOVER, {"from_agent": "a"}))
        assert await sink.flush(10.0)
    finally:
        await sink.close()

    assert [(e.kind, e.detail) for e in await history.events("c_1")] == [
        (EventKind.INTERRUPTION, {"seq": 0}),
        (EventKind.HANDOVER, {"from_agent": "a"}),
    ]


async def test_each_filter_narrows_the_list(store: CallStore, history: CallHistory) -> None:
    await add_call(store, "c_1", T0, said="I need a Refund please")
    await add_call(store, "c_2", T0 + 10, profile="sales", said="100% sure")
    await add_call(store, "c_3", T0 + 20)
    await store.end_call("c_2", EndReason.CALLER_ENDED, T0 + 15)
    await history.add_event(CallEvent("c_3", T0 + 21, EventKind.FAILOVER))

    async def found(**fields: object) -> list[str]:
        return ids(await history.search(HistoryFilter(**fields), 50))  # type: ignore[arg-type]

    assert await found() == ["c_3", "c_2", "c_1"]
    assert await found(since=T0 + 5) == ["c_3", "c_2"]
    assert await found(until=T0 + 20) == ["c_2", "c_1"]
    assert await found(profile="sales") == ["c_2"]
    assert await found(end_reason=EndReason.CALLER_ENDED) == ["c_2"]
    assert await found(had_failover=True) == ["c_3"]
    assert await found(had_failover=False) == ["c_2", "c_1"]
    assert await found(text="REFUND") == ["c_1"]
    assert await found(text="%") == ["c_2"]  # a wildcard is matched as itself
    assert await found(before=(T0 + 20, "c_3")) == ["c_2", "c_1"]
    assert [e.had_failover for e in await history.search(HistoryFilter(), 50)] == [
        True,
        False,
        False,
    ]
    assert await history.count(HistoryFilter(profile="default")) == 2


async def test_export_walks_pages_with_turns(store: CallStore, history: CallHistory) -> None:
    for n in range(105):
        await add_call(store, f"c_{n:03d}", T0 + n, said=f"turn {n}")

    calls = [call async for call in history.with_turns(HistoryFilter(), 104)]

    assert len(calls) == 104
    assert calls[0].id == "c_104" and calls[-1].id == "c_001"
    assert [t.text for t in calls[0].turns] == ["turn 104"]
