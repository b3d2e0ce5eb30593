"""What an agent keeps in and reads from the store: a buffered, retrying
writer of finished turns and call events, and the call's record when a room
is claimed.

A call never waits on the database: turns queue here and are written in the
background; when the database is unreachable they stay queued and are retried
with backoff, so none are lost while the process lives. Once written, each
is told to the monitors' live view (roles/live_events.py): when the event
arrives, the store already has what it announces."""

from __future__ import annotations

import asyncio
import contextlib
import time

from voxfleet.aio import Backoff, TaskSet
from voxfleet.dispatch.base import RoomDirectory, RoomJob
from voxfleet.domain.calls import CallStatus, EndReason, Turn
from voxfleet.domain.conversation import ConversationState
from voxfleet.domain.events import CallEvent, Detail, EventKind
from voxfleet.errors import VoxfleetError
from voxfleet.messages.live import of_stored
from voxfleet.observability.logging import get_logger
from voxfleet.pipeline.ports import TurnSink
from voxfleet.roles.live_events import LiveEvents
from voxfleet.store.history import CallHistory
from voxfleet.store.repository import CallStore

log = get_logger(__name__)


class StoreTurnSink(TurnSink):
    def __init__(
        self,
        store: CallStore,
        max_backoff: float = 5.0,
        history: CallHistory | None = None,
        live: LiveEvents | None = None,
    ) -> None:
        self._store = store
        self._history = history  # None: events are not kept
        self._live = live  # None: nobody is told
        self._queue: asyncio.Queue[Turn | CallEvent] = asyncio.Queue()
        self._max_backoff = max_backoff
        self._tasks = TaskSet("turn-sink")
        self._idle = asyncio.Event()
        self._idle.set()

    async def record(self, turn: Turn) -> None:
        self._idle.clear()
        self._queue.put_nowait(turn)

    async def event(self, event: CallEvent) -> None:
        if self._history is not None:
            self._idle.clear()
            self._queue.put_nowait(event)

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def start(self) -> None:
        self._tasks.spawn(self._run(), "writer")

    async def _run(self) -> None:
        while True:
            item = await self._queue.get()
            backoff = Backoff(0.1, self._max_backoff)
            what = _described(item)
            while True:
                try:
                    await self._write(item)
                    if self._live is not None:
                        self._live.emit(of_stored(item))
                    break
                except VoxfleetError as e:
                    if not e.retryable:
                        log.error("turn dropped", **what, error=e.message)
                        break
                    log.warning("store unavailable, turn kept for retry", call_id=item.call_id)
                    await backoff.sleep()
                except Exception:
                    log.exception("turn could not be written", **what)
                    break
            if self._queue.empty():
                self._idle.set()

    async def _write(self, item: Turn | CallEvent) -> None:
        if isinstance(item, Turn):
            await self._store.add_turn(item)
        elif self._history is not None:
            await self._history.add_event(item)

    async def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every recorded turn is written; False on timeout."""
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    async def close(self, timeout: float = 5.0) -> None:
        await self.flush(timeout)
        if not self._queue.empty():
            log.error("turns not written at shutdown", count=self._queue.qsize())
        await self._tasks.cancel_all()


def _described(item: Turn | CallEvent) -> dict[str, str | int]:
    if isinstance(item, Turn):
        return {"call_id": item.call_id, "seq": item.seq}
    return {"call_id": item.call_id, "event": item.kind.value}


def takeover_event(job: RoomJob, agent_id: str, rebuilt: bool, at: float) -> CallEvent:
    """An agent took a live room: handed over by a draining agent, or (its
    holder's lease having lapsed) failed over."""
    if job.handover_from:
        detail: Detail = {"agent": agent_id, "from_agent": job.handover_from}
        return CallEvent(job.room_id, at, EventKind.HANDOVER, detail)
    detail = {"agent": agent_id, "rebuilt_from_store": rebuilt}
    return CallEvent(job.room_id, at, EventKind.FAILOVER, detail)


async def call_is_live(calls: CallStore, call_id: str) -> bool:
    """The call may have ended while its job waited: then nobody serves it.
    The store is the record; if it cannot answer, the call is presumed live
    (the room ends itself anyway when its edge is silent)."""
    try:
        call = await calls.get_call(call_id)
    except VoxfleetError as e:
        if not e.retryable:
            raise
        return True
    return call is not None and call.status is not CallStatus.ENDED


async def state_from_store(calls: CallStore, job: RoomJob) -> ConversationState | None:
    """Redis lost a live room's state with the agent that held it: rebuilt from
    the stored turns. What the caller said since the last stored turn is lost;
    the room listens from now on."""
    call = await calls.get_call(job.room_id)
    if call is None:
        return None
    log.warning("room state lost, rebuilt from the store", room=job.room_id)
    return ConversationState.from_turns(job.room_id, job.profile, call.turns)


async def end_room(directory: RoomDirectory, calls: CallStore, room_id: str, reason: str) -> None:
    """An agent's room is over: forget it. When its edge went silent, the edge
    cannot record the end, so the agent does; and when the agent hung up, the
    edge may be gone too (the first reason recorded stays)."""
    with contextlib.suppress(VoxfleetError):
        await directory.end_room(room_id)
    if reason in (EndReason.CALLER_DISCONNECTED.value, EndReason.AGENT_ENDED.value):
        with contextlib.suppress(VoxfleetError):
            await calls.end_call(room_id, EndReason(reason), time.time())
