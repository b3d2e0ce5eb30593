"""What an agent keeps in and reads from the store: a buffered, retrying
writer of finished turns, and the call's record when a room is claimed.

A call never waits on the database: turns queue here and are written in the
background; when the database is unreachable they stay queued and are retried
with backoff, so none are lost while the process lives."""

from __future__ import annotations

import asyncio

from voxfleet.aio import Backoff, TaskSet
from voxfleet.dispatch.base import RoomJob
from voxfleet.domain.calls import CallStatus, Turn
from voxfleet.domain.conversation import ConversationState
from voxfleet.errors import VoxfleetError
from voxfleet.observability.logging import get_logger
from voxfleet.pipeline.ports import TurnSink
from voxfleet.store.repository import CallStore

log = get_logger(__name__)


class StoreTurnSink(TurnSink):
    def __init__(self, store: CallStore, max_backoff: float = 5.0) -> None:
        self._store = store
        self._queue: asyncio.Queue[Turn] = asyncio.Queue()
        self._max_backoff = max_backoff
        self._tasks = TaskSet("turn-sink")
        self._idle = asyncio.Event()
        self._idle.set()

    async def record(self, turn: Turn) -> None:
        self._idle.clear()
        self._queue.put_nowait(turn)

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def start(self) -> None:
        self._tasks.spawn(self._run(), "writer")

    async def _run(self) -> None:
        while True:
            turn = await self._queue.get()
            backoff = Backoff(0.1, self._max_backoff)
            while True:
                try:
                    await self._store.add_turn(turn)
                    break
                except VoxfleetError as e:
                    if not e.retryable:
                        log.error(
                            "turn dropped", call_id=turn.call_id, seq=turn.seq, error=e.message
                        )
                        break
                    log.warning("store unavailable, turn kept for retry", call_id=turn.call_id)
                    await backoff.sleep()
                except Exception:
                    log.exception("turn could not be written", call_id=turn.call_id, seq=turn.seq)
                    break
            if self._queue.empty():
                self._idle.set()

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
