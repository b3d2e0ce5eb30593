"""One live feed per monitor replica: one poll of the snapshot (roles/
live_snapshot.py) and one subscription to the agents' room events
(roles/live_events.py), both broadcast to every dashboard socket on the
replica. The cost of a poll is per replica, not per dashboard, and an event
reaches the dashboards as it arrives instead of at the next poll.

Each dashboard has a bounded outbox and its own sender: a slow or stuck
socket delays only itself. When its outbox overflows its backlog is dropped
and it gets a fresh snapshot instead (the page replaces its state on every
snapshot), so it never misses a change for good and never holds unbounded
memory."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable

from pydantic import ValidationError

from voxfleet.aio import Backoff, TaskSet
from voxfleet.bus.base import Bus, live_events
from voxfleet.errors import VoxfleetError
from voxfleet.messages.live import LiveEvent, LiveKind
from voxfleet.observability.logging import get_logger
from voxfleet.observability.metrics import LIVE_DASHBOARDS, LIVE_EVENTS, LIVE_RESYNCS
from voxfleet.roles.live_snapshot import Snapshot, changes, full

log = get_logger(__name__)
POLL_SECONDS = 1.0  # a snapshot at least this often while anyone watches
DEBOUNCE_SECONDS = 0.25  # and at most once per this, however many events ask for one
OUTBOX_LIMIT = 256  # messages waiting for one socket; more: dropped for a snapshot
# Events after which the snapshot is read again (the rooms, their last words).
_RESNAPSHOT = {LiveKind.ATTACHED, LiveKind.ENDED, LiveKind.FAILOVER, LiveKind.HANDOVER}

SendText = Callable[[str], Awaitable[None]]
ReadSnapshot = Callable[[], Awaitable[Snapshot]]


def dumps(message: dict[str, object]) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


class Outbox:
    """One dashboard as the hub sees it: what waits to be sent to it (bounded)
    and the one task that sends it, in order."""

    def __init__(self, send: SendText, limit: int = OUTBOX_LIMIT) -> None:
        self._send = send
        self._queue: asyncio.Queue[str] = asyncio.Queue(limit)
        self.synced = False  # has had its snapshot: changes and events follow it
        self.resyncs = 0

    def offer(self, text: str) -> bool:
        """Queue ``text``; False when the outbox was full: then its backlog is
        dropped and it waits for a fresh snapshot."""
        try:
            self._queue.put_nowait(text)
        except asyncio.QueueFull:
            while not self._queue.empty():
                self._queue.get_nowait()
            self.synced = False
            self.resyncs += 1
            LIVE_RESYNCS.inc()
            return False
        return True

    async def run(self) -> None:
        while True:
            await self._send(await self._queue.get())


class LiveHub:
    def __init__(
        self,
        read: ReadSnapshot,
        bus: Bus,
        poll_seconds: float = POLL_SECONDS,
        debounce_seconds: float = DEBOUNCE_SECONDS,
    ) -> None:
        self._read = read
        self._bus = bus
        self._poll_seconds = poll_seconds
        self._debounce = debounce_seconds
        self._dashboards: set[Outbox] = set()
        self._last: Snapshot | None = None
        self._wake = asyncio.Event()
        self._tasks = TaskSet("live-hub")
        self._running = False
        self.subscribed = asyncio.Event()  # set while the events topic is subscribed

    def join(self, outbox: Outbox) -> None:
        """``outbox`` gets a fresh snapshot at once (debounced), then every change
        and event."""
        if not self._running:
            self._running = True
            self._tasks.spawn(self._poll(), "poll")
            self._tasks.spawn(self._listen(), "events")
        outbox.synced = False
        self._dashboards.add(outbox)
        LIVE_DASHBOARDS.set(len(self._dashboards))
        self._wake.set()

    def leave(self, outbox: Outbox) -> None:
        self._dashboards.discard(outbox)
        LIVE_DASHBOARDS.set(len(self._dashboards))

    async def _poll(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_seconds if self._dashboards else None):
                    await self._wake.wait()
            self._wake.clear()
            if not self._dashboards:
                self._last = None  # nobody watches: no polling, and a fresh start after
                continue
            try:
                snap = await self._read()
            except Exception as e:  # Redis or the store blinked: dashboards keep the last
                log.warning("live view: snapshot failed", error=repr(e))
            else:
                self._broadcast(snap)
            await asyncio.sleep(self._debounce)

    def _broadcast(self, snap: Snapshot) -> None:
        diff = changes(self._last, snap) if self._last is not None else None
        diff_text = dumps(diff) if diff is not None else None
        fresh: str | None = None
        for outbox in tuple(self._dashboards):
            if not outbox.synced:
                fresh = fresh or dumps(full(snap))
                outbox.synced = outbox.offer(fresh)
            elif diff_text is not None and not outbox.offer(diff_text):
                self._wake.set()
        self._last = snap

    async def _listen(self) -> None:
        backoff = Backoff(0.1, 5.0)
        while True:
            try:
                subscription = await self._bus.subscribe(live_events())
            except VoxfleetError as e:
                if not e.retryable:
                    raise
                log.warning("live view: events unavailable", error=e.code)
                await backoff.sleep()
                continue
            self.subscribed.set()
            async with subscription:
                async for raw in subscription:
                    self.fan_out(raw)
                    # Senders go between two events: a burst from Redis is not
                    # one dashboard's backlog.
                    await asyncio.sleep(0)
            self.subscribed.clear()
            return  # the bus closed: the process is stopping

    def fan_out(self, raw: bytes) -> None:
        """An agent's event to every synced dashboard now, serialised once."""
        try:
            event = LiveEvent.model_validate_json(raw)
        except ValidationError:
            log.warning("live view: malformed event dropped")
            return
        LIVE_EVENTS.labels("received").inc()
        text = event.model_dump_json()
        for outbox in tuple(self._dashboards):
            if outbox.synced and not outbox.offer(text):
                self._wake.set()
        user_turn = event.kind is LiveKind.TURN and event.detail.get("speaker") == "user"
        if event.kind in _RESNAPSHOT or user_turn:
            self._wake.set()

    async def close(self) -> None:
        await self._tasks.cancel_all()
        self._dashboards.clear()
        LIVE_DASHBOARDS.set(0)
