"""Caller audio from the edge to the bus: numbered, buffered, never blocking.

The socket reader hands frames over and goes on; a pump publishes them in
order. The last REPLAY_SECONDS of audio stay here, so when a new agent takes the
room (failover, handover) or an agent saw a gap, the frames it has not heard
are published again. When the bus is unreachable the pump retries with backoff
from the first unpublished frame: a Redis blip delays the caller's audio but
loses none of it (within the buffer)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Any

from voxfleet.bus.base import Bus, room_up
from voxfleet.bus.messages import encode_audio, encode_control
from voxfleet.errors import VoxfleetError
from voxfleet.observability.logging import get_logger

log = get_logger(__name__)
REPLAY_SECONDS = 30.0
MAX_FRAMES = int(REPLAY_SECONDS * 50)  # at the recommended 20 ms frames
MAX_BACKOFF = 2.0
TICK_SECONDS = 1.0


class Uplink:
    def __init__(self, bus: Bus, room_id: str) -> None:
        self._bus = bus
        self._room_id = room_id
        self._topic = room_up(room_id)
        self._frames: deque[tuple[int, bytes]] = deque(maxlen=MAX_FRAMES)
        self._seq = 0
        self._published = 0  # every frame with seq <= this is on the bus
        self._wake = asyncio.Event()

    @property
    def last_seq(self) -> int:
        return self._seq

    def audio(self, pcm: bytes) -> None:
        self._seq += 1
        self._frames.append((self._seq, pcm))
        self._wake.set()

    def replay(self, after: int) -> None:
        """Publish again every buffered frame numbered after ``after``."""
        self._published = min(self._published, max(0, after))
        self._wake.set()

    async def run(self) -> None:
        backoff = 0.05
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._publish_pending()
                backoff = 0.05
            except VoxfleetError as e:
                if not e.retryable:
                    raise
                log.warning("bus unavailable, caller audio buffered", room=self._room_id)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                self._wake.set()

    async def _publish_pending(self) -> None:
        # Frames are numbered without gaps, so the next one is found by index; a
        # replay() between two publishes just moves ``_published`` back.
        while self._published < self._seq:
            first = self._frames[0][0]
            seq, pcm = self._frames[max(0, self._published + 1 - first)]
            await self._bus.publish(self._topic, encode_audio(pcm, seq))
            self._published = seq

    async def tick(self, every: float = TICK_SECONDS) -> None:
        """Tell the agent, every ``every`` seconds, the last frame published: an
        agent that missed frames when nothing followed them learns it here."""
        while True:
            await asyncio.sleep(every)
            if self._published:
                with contextlib.suppress(VoxfleetError):
                    await self._bus.publish(
                        self._topic, encode_control("tick", seq=self._published)
                    )

    async def control(self, type_: str, **body: Any) -> None:
        """A control message to the agent, retried briefly (the hangup must arrive)."""
        for attempt in range(5):
            with contextlib.suppress(VoxfleetError):
                await self._bus.publish(self._topic, encode_control(type_, **body))
                return
            await asyncio.sleep(0.1 * 2**attempt)
        log.error("control message lost", room=self._room_id, type=type_)
