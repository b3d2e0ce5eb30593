"""StoreTurnSink: turns queue while the store is down and are written, in order, when
it comes back; a turn the store rejects for good is dropped, not retried forever."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from voxfleet.bus.base import live_events
from voxfleet.bus.memory import InProcessBus
from voxfleet.domain.calls import Speaker, Turn
from voxfleet.errors import StoreUnavailable, VoxfleetError
from voxfleet.messages.live import LiveEvent
from voxfleet.roles.live_events import LiveEvents
from voxfleet.roles.sink import StoreTurnSink
from voxfleet.store.repository import CallStore

pytestmark = pytest.mark.unit

WAIT = 10.0  # bound on flushes that must succeed: a hang fails, not blocks


class ScriptedStore(CallStore):
    """A CallStore whose add_turn fails as scripted and records what it wrote."""

    def __init__(self, unavailable_for: int = 0, reject: frozenset[int] = frozenset()) -> None:
        super().__init__(None)  # type: ignore[arg-type]  # add_turn never touches it
        self.unavailable_for = unavailable_for  # fail this many attempts, then work
        self.reject = reject  # seqs refused for good
        self.crash: frozenset[int] = frozenset()  # seqs that raise an unexpected error
        self.gate: asyncio.Event | None = None  # when set up, writes wait for it
        self.writing = asyncio.Event()
        self.attempts = 0
        self.written: list[Turn] = []

    async def add_turn(self, turn: Turn) -> None:
        self.attempts += 1
        self.writing.set()
        if self.gate is not None:
            await self.gate.wait()
        await asyncio.sleep(0)  # a real write suspends while the database works
        if self.unavailable_for > 0:
            self.unavailable_for -= 1
            raise StoreUnavailable("the database is unavailable")
        if turn.seq in self.reject:
            raise VoxfleetError("call does not exist", code="not_found")
        if turn.seq in self.crash:
            raise RuntimeError("unexpected")
        self.written.append(turn)

    def seqs(self) -> list[int]:
        return [t.seq for t in self.written]


def turn(seq: int) -> Turn:
    speaker = Speaker.USER if seq % 2 == 0 else Speaker.AGENT
    return Turn("c_1", seq, speaker, f"turn {seq}", 1000.0 + seq, 1000.5 + seq)


@pytest.fixture
def store() -> ScriptedStore:
    return ScriptedStore()


@pytest.fixture
async def sink(store: ScriptedStore) -> AsyncIterator[StoreTurnSink]:
    sink = StoreTurnSink(store, max_backoff=0.01)
    sink.start()
    yield sink
    await close(sink, 0.1)


async def close(sink: StoreTurnSink, timeout: float) -> None:
    """``sink.close(timeout)``, failing the test if close() itself hangs."""
    closing = asyncio.create_task(sink.close(timeout=timeout), name="test-close")
    done, _ = await asyncio.wait([closing], timeout=timeout + WAIT)
    if not done:
        closing.cancel()
        await asyncio.wait([closing])
        pytest.fail("StoreTurnSink.close() did not return")
    closing.result()


def sink_tasks() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("turn-sink") and not t.done()]


async def test_turns_are_written_in_order(sink: StoreTurnSink, store: ScriptedStore) -> None:
    for seq in range(5):
        await sink.record(turn(seq))
    assert await sink.flush(WAIT)
    assert store.written == [turn(seq) for seq in range(5)]
    assert sink.pending == 0


async def test_turns_survive_a_store_outage_in_order(
    sink: StoreTurnSink, store: ScriptedStore
) -> None:
    store.unavailable_for = 3
    for seq in range(4):
        await sink.record(turn(seq))
    assert await sink.flush(WAIT)
    assert store.seqs() == [0, 1, 2, 3]
    assert store.attempts == 4 + 3


async def test_flush_is_false_while_the_store_is_down_then_true(
    sink: StoreTurnSink, store: ScriptedStore
) -> None:
    store.unavailable_for = 10**9
    await sink.record(turn(0))
    await sink.record(turn(1))
    assert not await sink.flush(0.2)
    assert store.written == []

    store.unavailable_for = 0  # the database is back
    await sink.record(turn(2))
    assert await sink.flush(WAIT)
    assert store.seqs() == [0, 1, 2]


async def test_a_turn_is_told_to_the_live_view_once_it_is_written(store: ScriptedStore) -> None:
    bus = InProcessBus()
    live = LiveEvents(bus)
    sink = StoreTurnSink(store, max_backoff=0.01, live=live)
    sink.start()
    try:
        async with await bus.subscribe(live_events()) as heard:
            store.gate = asyncio.Event()
            await sink.record(turn(1))
            await asyncio.wait_for(store.writing.wait(), WAIT)  # being written, not yet done
            assert (live.pending, live.published) == (0, 0)
            store.gate.set()
            raw = await heard.get(WAIT)
            assert raw is not None
            event = LiveEvent.model_validate_json(raw)
            assert (event.kind, event.call_id, event.detail["seq"]) == ("turn", "c_1", 1)
            assert event.detail["speaker"] == "agent"
    finally:
        await close(sink, 0.1)
        await live.close()
        await bus.close()


async def test_flush_with_nothing_recorded_is_true(sink: StoreTurnSink) -> None:
    assert await sink.flush(WAIT)


async def test_turn_recorded_during_a_write_is_flushed_too(
    sink: StoreTurnSink, store: ScriptedStore
) -> None:
    store.gate = asyncio.Event()
    await sink.record(turn(0))
    await asyncio.wait_for(store.writing.wait(), WAIT)  # turn 0 is being written
    await sink.record(turn(1))
    store.gate.set()
    assert await sink.flush(WAIT)
    assert store.seqs() == [0, 1]


async def test_rejected_turn_is_dropped_and_the_next_written(
    sink: StoreTurnSink, store: ScriptedStore
) -> None:
    store.reject = frozenset({1})
    for seq in range(3):
        await sink.record(turn(seq))
    assert await sink.flush(WAIT)
    assert store.seqs() == [0, 2]
    assert store.attempts == 3  # not retried


async def test_unexpected_error_drops_the_turn_and_the_sink_goes_on(
    sink: StoreTurnSink, store: ScriptedStore
) -> None:
    store.crash = frozenset({0})
    await sink.record(turn(0))
    await sink.record(turn(1))
    assert await sink.flush(WAIT)
    assert store.seqs() == [1]


async def test_close_writes_pending_turns_and_leaves_no_task(store: ScriptedStore) -> None:
    sink = StoreTurnSink(store, max_backoff=0.01)
    sink.start()
    assert len(sink_tasks()) == 1
    store.unavailable_for = 2
    for seq in range(3):
        await sink.record(turn(seq))
    await close(sink, WAIT)
    assert store.seqs() == [0, 1, 2]
    assert sink_tasks() == []


async def test_close_while_the_store_is_down_returns_and_leaves_no_task(
    store: ScriptedStore,
) -> None:
    sink = StoreTurnSink(store, max_backoff=0.01)
    sink.start()
    store.unavailable_for = 10**9
    await sink.record(turn(0))
    await close(sink, 0.1)
    assert sink_tasks() == []
    assert store.written == []


class HangingStore(ScriptedStore):
    """A store that never answers, and takes a moment to roll back when cancelled."""

    def __init__(self) -> None:
        super().__init__()
        self.cancelled = asyncio.Event()
        self.release = asyncio.Event()

    async def add_turn(self, turn: Turn) -> None:
        self.writing.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            await self.release.wait()
            raise


async def test_cancelling_close_cancels_its_caller() -> None:
    store = HangingStore()
    sink = StoreTurnSink(store)
    sink.start()
    await sink.record(turn(0))
    await asyncio.wait_for(store.writing.wait(), WAIT)
    closer = asyncio.create_task(sink.close(timeout=0.01), name="test-closer")
    try:
        # close() gave up flushing, cancelled its writer and waits for it to finish.
        await asyncio.wait_for(store.cancelled.wait(), WAIT)
        closer.cancel()
        store.release.set()
        await asyncio.wait([closer], timeout=WAIT)
        assert closer.cancelled()
    finally:
        store.release.set()
        leftovers = [closer, *sink_tasks()]
        for task in leftovers:
            task.cancel()
        await asyncio.wait(leftovers, timeout=WAIT)
