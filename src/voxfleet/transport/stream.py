"""Numbered streams over the bus: how a room's traffic survives a Redis blip.

Pub/sub delivers at most once: a message published while Redis restarts, or
while the receiver is still re-subscribing, is gone. So each direction of a
room's traffic (caller -> agent on ``room/{id}/up``, agent -> caller on
``room/{id}/down``) is a numbered stream. The sender (``Outbox``) numbers every
message, keeps the recent ones, and publishes them in order from a pump that
waits out an unreachable bus; once a second it publishes a tick naming the
last message it published. The receiver (``Inbox``) takes each number once and
in order; a gap (a message after a missing one, or a tick ahead of what it has)
makes it ask the sender to publish again everything after its last one.

Epochs name the producer: a new agent (a new lease fence) or a new caller
socket starts a new, larger epoch, and messages of an older epoch are dropped.
That also fences out an agent that lost its room but is still talking."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque

from voxfleet.aio import Backoff
from voxfleet.bus.base import Bus
from voxfleet.errors import VoxfleetError
from voxfleet.messages.room import Stream, Tick, encode, encode_numbered
from voxfleet.observability.logging import get_logger

log = get_logger(__name__)

KEEP_MESSAGES = 1500  # 30 s of 20 ms frames: a bus outage up to that long loses nothing
TICK_SECONDS = 1.0
REASK_SECONDS = 1.0  # a replay request that got no answer is sent again after this


class Outbox:
    """The sending end of one numbered stream, ``stream`` on ``topic``, ticking on
    ``control``. ``push`` never blocks and never fails; ``run`` (the pump) and
    ``ticks`` run as the owner's tasks."""

    def __init__(
        self,
        bus: Bus,
        topic: str,
        control: str,
        stream: Stream,
        epoch: int,
        keep: int = KEEP_MESSAGES,
    ) -> None:
        self.topic = topic
        self.epoch = epoch
        self._control = control
        self._stream: Stream = stream
        self._bus = bus
        self._messages: deque[tuple[int, bytes]] = deque(maxlen=keep)
        self._seq = 0
        self._published = 0  # every message numbered up to this is on the bus
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()

    @property
    def last_seq(self) -> int:
        return self._seq

    @property
    def published(self) -> int:
        return self._published

    def push(self, encoded: bytes) -> int:
        """Queue an encoded ``A``/``J`` message (messages/room.py); returns its number."""
        self._seq += 1
        self._messages.append((self._seq, encode_numbered(self.epoch, self._seq, encoded)))
        self._wake.set()
        return self._seq

    def replay(self, epoch: int, after: int) -> None:
        """The receiver has everything up to ``after`` of ``epoch``: publish the
        rest again (what is still kept). A request for another epoch is not ours."""
        if epoch != self.epoch:
            return
        self._published = min(self._published, max(0, after))
        self._wake.set()

    async def run(self) -> None:
        backoff = Backoff()
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._publish_pending()
                backoff.reset()
            except VoxfleetError as e:
                if not e.retryable:
                    raise
                if backoff.failures == 0:
                    log.warning("bus unavailable, messages kept", topic=self.topic, error=e.code)
                await backoff.sleep()
                self._wake.set()

    async def _publish_pending(self) -> None:
        # Numbers have no gaps, so the next message is found by index; a replay()
        # between two publishes just moves ``_published`` back.
        while self._published < self._seq:
            first = self._messages[0][0]
            seq, message = self._messages[max(0, self._published + 1 - first)]
            await self._bus.publish(self.topic, message)
            self._published = seq
            self._progress.set()

    async def ticks(self, every: float = TICK_SECONDS) -> None:
        """Publish the last published number every ``every`` seconds, so a
        receiver that lost messages with nothing after them learns it."""
        while True:
            await asyncio.sleep(every)
            tick = Tick(stream=self._stream, epoch=self.epoch, seq=self._published)
            with contextlib.suppress(VoxfleetError):
                await self._bus.publish(self._control, encode(tick))

    async def flush(self, timeout: float) -> bool:
        """Wait until everything pushed so far is on the bus; False on timeout."""
        target = self._seq
        try:
            async with asyncio.timeout(timeout):
                while self._published < target:
                    self._progress.clear()
                    await self._progress.wait()
        except TimeoutError:
            return False
        return True


class Inbox:
    """The receiving end of one numbered stream: which messages to take."""

    def __init__(self, epoch: int = 0, last: int | None = 0) -> None:
        """``last=None``: join the stream wherever it is (take the next message
        whatever its number) instead of asking for what came before."""
        self.epoch = epoch
        self.last = last or 0  # every message of ``epoch`` up to this was taken
        self._joining = last is None
        self._gap = False
        self._asked: tuple[int, int, float] | None = None  # (epoch, after, when)

    def accept(self, epoch: int, seq: int) -> bool:
        """True when message ``seq`` of ``epoch`` is the next one to take."""
        if epoch < self.epoch:
            return False  # an older producer: fenced out
        if epoch > self.epoch:
            self.epoch, self.last = epoch, 0
        if self._joining:
            self._joining = False
            self.last = seq - 1
        if seq <= self.last:
            return False  # a duplicate (a replay overlapping what we had)
        if seq > self.last + 1:
            self._gap = True  # lost on the bus: ask for it, take nothing until then
            return False
        self.last = seq
        self._gap = False
        return True

    def tick(self, epoch: int, seq: int) -> None:
        """The sender's tick: it has published up to ``seq`` of ``epoch``."""
        if self._joining:
            return
        if epoch > self.epoch:
            self.epoch, self.last = epoch, 0  # a newer producer whose first messages we missed
        if epoch == self.epoch and seq > self.last:
            self._gap = True

    @property
    def behind(self) -> bool:
        return self._gap

    def close_epoch(self, old: int, new: int) -> int | None:
        """The producer of ``old`` is replaced by ``new``: take nothing more of
        ``old``. Returns how far ``old`` was taken: 0 when this inbox is still on
        an older producer (a caller whose socket dropped before any of its audio
        came through), or None when it cannot tell (it joined a stream without
        knowing what came before) or has already moved past ``old``."""
        if self.epoch > old or self._joining:
            return None
        taken = self.last if self.epoch == old else 0
        if new > self.epoch:
            self.epoch, self.last, self._gap = new, 0, False
        return taken

    def missed(self) -> None:
        """Messages came that were not taken (the taker was not listening): ask
        for everything after the last one taken."""
        self._joining = False
        self._gap = True

    def replay_request(self) -> int | None:
        """``after`` to ask the sender (of ``self.epoch``) to replay from, or None
        when nothing is missing or the same request went out under a second ago."""
        if not self._gap:
            return None
        now = time.monotonic()
        if self._asked is not None:
            asked_epoch, asked_after, at = self._asked
            if (asked_epoch, asked_after) == (self.epoch, self.last) and now - at < REASK_SECONDS:
                return None
        self._asked = (self.epoch, self.last, now)
        return self.last
