"""The Bus interface every implementation passes the same contract tests against."""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from types import TracebackType


class Subscription(ABC):
    """Messages published to one topic after the subscription was made, in order.

    Use as an async context manager; iterate, or ``get()`` with a timeout."""

    topic: str

    @abstractmethod
    async def get(self, timeout: float | None = None) -> bytes | None:
        """The next message, or None when ``timeout`` passes first."""

    @abstractmethod
    async def close(self) -> None: ...

    @property
    @abstractmethod
    def closed(self) -> bool:
        """No more messages will come (closed by us or the bus)."""

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        while True:
            message = await self.get()
            if message is None:
                return
            yield message


class QueuedSubscription(Subscription):
    """A subscription fed by its bus into a bounded queue. A slow subscriber
    cannot stall publishers: when the queue is full the oldest message is
    dropped and counted (audio is real time; stale audio is worth less)."""

    def __init__(self, topic: str, limit: int) -> None:
        self.topic = topic
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(limit)
        self.dropped = 0
        self._closed = False

    def _deliver(self, message: bytes | None) -> None:
        while True:
            try:
                self._queue.put_nowait(message)
                return
            except asyncio.QueueFull:
                with contextlib.suppress(asyncio.QueueEmpty):
                    self._queue.get_nowait()
                    self.dropped += 1

    @property
    def closed(self) -> bool:
        return self._closed and self._queue.empty()

    async def get(self, timeout: float | None = None) -> bytes | None:
        if self._closed and self._queue.empty():
            return None
        try:
            async with asyncio.timeout(timeout):
                return await self._queue.get()
        except TimeoutError:
            return None


class Bus(ABC):
    @abstractmethod
    async def publish(self, topic: str, message: bytes) -> None:
        """Deliver ``message`` to every current subscriber of ``topic`` (at most once)."""

    @abstractmethod
    async def subscribe(self, topic: str) -> Subscription: ...

    @abstractmethod
    async def close(self) -> None: ...


def room_up(room_id: str) -> str:
    """Caller -> agent: caller audio and caller/edge control messages."""
    return f"room/{room_id}/up"


def room_down(room_id: str) -> str:
    """Agent -> caller: agent audio and client-visible messages."""
    return f"room/{room_id}/down"


def room_control(room_id: str) -> str:
    """Between edge and agents, both ways: ticks, replay requests, failures."""
    return f"room/{room_id}/control"


def live_events() -> str:
    """Agents -> every monitor replica: what just happened to a room, for the live view."""
    return "monitor/events"
