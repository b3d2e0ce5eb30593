"""In-process bus: asyncio queues, one per subscription. Used by ``voxfleet up``.

A slow subscriber cannot stall publishers: its queue is bounded and, when full,
the oldest message is dropped and counted (audio is real time; stale audio is
worth less than fresh)."""

from __future__ import annotations

from collections import defaultdict

from voxfleet.bus.base import Bus, QueuedSubscription, Subscription

QUEUE_LIMIT = 1000


class _MemorySubscription(QueuedSubscription):
    def __init__(self, bus: InProcessBus, topic: str) -> None:
        super().__init__(topic, QUEUE_LIMIT)
        self._bus = bus

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._bus._remove(self)
            self._deliver(None)


class InProcessBus(Bus):
    def __init__(self) -> None:
        self._subs: defaultdict[str, set[_MemorySubscription]] = defaultdict(set)

    async def publish(self, topic: str, message: bytes) -> None:
        for sub in tuple(self._subs.get(topic, ())):
            sub._deliver(message)

    async def subscribe(self, topic: str) -> Subscription:
        sub = _MemorySubscription(self, topic)
        self._subs[topic].add(sub)
        return sub

    def _remove(self, sub: _MemorySubscription) -> None:
        subs = self._subs.get(sub.topic)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.topic]

    async def close(self) -> None:
        for subs in list(self._subs.values()):
            for sub in list(subs):
                await sub.close()
