"""The agent's side of the live view: each room event (attached, a stored
turn or call event, the end) goes out on the bus topic ``monitor/events``
for every monitor replica (messages/live.py). The agent worker emits the
room's; its turn sink (roles/sink.py) what it has stored.

Fire and forget: ``emit`` never waits and never raises. Events wait in a
bounded buffer (the oldest dropped and counted when it is full) and one task
publishes them; while Redis is down they are dropped after a short try,
since the store keeps the record and the monitors' poll catches up."""

from __future__ import annotations

import asyncio
from collections import deque

from voxfleet.aio import TaskSet
from voxfleet.bus.base import Bus, live_events
from voxfleet.messages.live import LiveEvent
from voxfleet.observability.logging import get_logger
from voxfleet.observability.metrics import LIVE_EVENTS

log = get_logger(__name__)
BUFFER = 1000  # events waiting to be published; beyond it the oldest go
PUBLISH_TIMEOUT_S = 0.5  # a batch not out by then is dropped


class LiveEvents:
    def __init__(self, bus: Bus) -> None:
        self._bus = bus
        self._buffer: deque[LiveEvent] = deque(maxlen=BUFFER)
        self._ready = asyncio.Event()
        self._tasks = TaskSet("live-events")
        self._publisher: asyncio.Task[None] | None = None
        self._failing = False
        self._closed = False
        self.published = 0
        self.dropped = 0

    @property
    def pending(self) -> int:
        """Events emitted and not yet handed to the bus."""
        return len(self._buffer)

    def emit(self, event: LiveEvent) -> None:
        if len(self._buffer) == self._buffer.maxlen:
            self.dropped += 1
            LIVE_EVENTS.labels("dropped").inc()
        self._buffer.append(event)
        self._ready.set()
        if (self._publisher is None or self._publisher.done()) and not self._closed:
            self._publisher = self._tasks.spawn(self._run(), "publisher")

    async def _run(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            batch = list(self._buffer)
            self._buffer.clear()
            await self._publish(batch)

    async def _publish(self, batch: list[LiveEvent]) -> None:
        topic = live_events()
        sends = [self._bus.publish(topic, e.encode()) for e in batch]
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT_S):
                # Together: the Redis bus sends one tick's publishes in one pipeline.
                results = await asyncio.gather(*sends, return_exceptions=True)
        except TimeoutError as e:
            results = [e] * len(batch)
        # A bus error, a timeout or a bug: never the call's problem.
        errors = [r for r in results if isinstance(r, BaseException)]
        sent = len(batch) - len(errors)
        self.published += sent
        self.dropped += len(errors)
        LIVE_EVENTS.labels("published").inc(sent)
        LIVE_EVENTS.labels("dropped").inc(len(errors))
        if errors and not self._failing:
            log.warning("live events not published", count=len(errors), error=repr(errors[0]))
        elif self._failing and not errors:
            log.info("live events published again")
        self._failing = bool(errors)

    async def close(self) -> None:
        self._closed = True
        await self._tasks.cancel_all()
