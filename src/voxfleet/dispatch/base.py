"""Interfaces of the dispatch layer."""

from __future__ import annotations

from abc import ABC, abstractmethod

from pydantic import BaseModel

from voxfleet.domain.conversation import ConversationState


class RoomJob(BaseModel):
    """A room waiting for an agent. ``resume`` is set when the room already had
    one (failover or handover): the new agent restores state and skips the greeting."""

    room_id: str
    profile: str
    resume: bool = False
    enqueued_at: float


class RoomQueue(ABC):
    @abstractmethod
    async def put(self, job: RoomJob) -> None: ...

    @abstractmethod
    async def take(self, timeout: float | None = None) -> RoomJob | None:
        """The oldest waiting room, or None after ``timeout`` seconds."""

    @abstractmethod
    async def depth(self) -> int: ...


class RoomStateStore(ABC):
    """Where a room's ConversationState lives while the call is live."""

    @abstractmethod
    async def load(self, room_id: str) -> ConversationState | None: ...

    @abstractmethod
    async def save(self, state: ConversationState) -> None: ...

    @abstractmethod
    async def delete(self, room_id: str) -> None: ...
