"""The Bus interface every implementation passes the same contract tests against."""

from __future__ import annotations

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


EVENTS_TOPIC = "events"
