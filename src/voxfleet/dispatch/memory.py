"""In-process dispatch for ``voxfleet up``. State is kept as JSON text, exactly as
Redis will keep it, so nothing can hold a live reference to another's state."""

from __future__ import annotations

import asyncio

from voxfleet.dispatch.base import RoomJob, RoomQueue, RoomStateStore
from voxfleet.domain.conversation import ConversationState


class InProcessRoomQueue(RoomQueue):
    def __init__(self) -> None:
        self._queue: asyncio.Queue[RoomJob] = asyncio.Queue()

    async def put(self, job: RoomJob) -> None:
        self._queue.put_nowait(job)

    async def take(self, timeout: float | None = None) -> RoomJob | None:
        try:
            async with asyncio.timeout(timeout):
                return await self._queue.get()
        except TimeoutError:
            return None

    async def depth(self) -> int:
        return self._queue.qsize()


class InProcessStateStore(RoomStateStore):
    def __init__(self) -> None:
        self._states: dict[str, str] = {}

    async def load(self, room_id: str) -> ConversationState | None:
        raw = self._states.get(room_id)
        return None if raw is None else ConversationState.model_validate_json(raw)

    async def save(self, state: ConversationState) -> None:
        state.version += 1
        self._states[state.room_id] = state.model_dump_json()

    async def delete(self, room_id: str) -> None:
        self._states.pop(room_id, None)
