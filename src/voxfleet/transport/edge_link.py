"""The edge's end of a room on the bus: the caller's numbered ``up`` stream
out, the serving agent's numbered ``down`` stream in (transport/stream.py),
and a watch on who serves the room.

The edge queues the room for an agent, makes sure a job stays queued while no
agent serves it (a Redis restart loses the queue), and notices when the agent
that served it is gone with nobody to take over: it queues the room again,
tells the caller it waits, and gives up after the queue timeout. When the call
ends, every agent learns it: the hang-up goes out, the job leaves the queue
and the room gets its tombstone."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType

from voxfleet.aio import Backoff, TaskSet
from voxfleet.bus.base import Bus, Subscription, room_control, room_down, room_up
from voxfleet.dispatch.base import RoomDirectory, RoomJob, RoomQueue
from voxfleet.errors import MalformedMessage, VoxfleetError
from voxfleet.messages.client import AgentMessage
from voxfleet.messages.room import (
    AgentFailed,
    Attached,
    AudioFrame,
    Hangup,
    Replay,
    Tick,
    decode_control,
    decode_down,
    encode,
    encode_audio,
)
from voxfleet.observability.logging import get_logger
from voxfleet.transport.bus_link import new_epoch
from voxfleet.transport.stream import Inbox, Outbox

log = get_logger(__name__)
QUEUED_AFTER_S = 1.0  # no agent within this: tell the caller it is queued
AGENT_SILENT_S = 3.0  # no word from the room's agent (it ticks every second): look for one
CHECK_JOB_EVERY_S = 5.0  # is the room's job still queued (a Redis restart loses it)?


@dataclass(slots=True, frozen=True)
class AgentWaiting:
    """No agent serves the call now; it waits in the queue."""


@dataclass(slots=True, frozen=True)
class AgentGaveUp:
    """The agent could not serve the call."""


@dataclass(slots=True, frozen=True)
class NoAgentInTime:
    """No agent took the call within the queue timeout."""


EdgeEvent = Attached | AudioFrame | AgentMessage | AgentWaiting | AgentGaveUp | NoAgentInTime


@dataclass(slots=True, frozen=True)
class Dispatch:
    """What the edge needs to reach agents: the bus, the queue, the directory."""

    bus: Bus
    queue: RoomQueue
    directory: RoomDirectory


class EdgeRoomLink:
    """Use as ``async with``; ``events()`` yields what the caller must learn."""

    def __init__(
        self, dispatch: Dispatch, call_id: str, profile: str, attach_timeout: float
    ) -> None:
        self.call_id = call_id
        bus = self._bus = dispatch.bus
        self._queue = dispatch.queue
        self._directory = dispatch.directory
        self._profile = profile
        self._attach_timeout = attach_timeout
        self._control_topic = room_control(call_id)
        self.up = Outbox(bus, room_up(call_id), self._control_topic, "up", new_epoch())
        self._inbox = Inbox()
        self._tasks = TaskSet(f"edge:{call_id}")
        self._down: Subscription | None = None
        self._control: Subscription | None = None
        self._job_id: str | None = None
        self._served = False  # an agent serves the room now
        self._ever_served = False
        self._waiting_since = time.monotonic()
        self._told_waiting = False
        self._heard_at = time.monotonic()  # last word from the serving agent
        self._job_checked_at = time.monotonic()
        self._tick: Tick | None = None
        self._failed: AgentFailed | None = None

    async def __aenter__(self) -> EdgeRoomLink:
        self._down = await self._subscribe(room_down(self.call_id))
        try:
            self._control = await self._subscribe(self._control_topic)
        except BaseException:
            await self._down.close()
            raise
        self._tasks.spawn(self.up.run(), "up")
        self._tasks.spawn(self.up.ticks(), "up-ticks")
        self._tasks.spawn(self._read_control(self._control), "control")
        await self._queue_job()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._tasks.cancel_all()
        for sub in (self._down, self._control):
            if sub is not None:
                await sub.close()

    async def _subscribe(self, topic: str) -> Subscription:
        """Subscribe, waiting out a bus outage for up to the queue timeout
        (TimeoutError after that)."""
        backoff = Backoff(0.1, 2.0)
        async with asyncio.timeout(self._attach_timeout):
            while True:
                try:
                    return await self._bus.subscribe(topic)
                except VoxfleetError as e:
                    if not e.retryable:
                        raise
                await backoff.sleep()

    async def _queue_job(self) -> None:
        job = RoomJob(
            room_id=self.call_id,
            profile=self._profile,
            resume=self._ever_served,
            enqueued_at=time.time(),
        )
        try:
            self._job_id = await self._queue.put(job)
        except VoxfleetError:
            self._job_checked_at = 0.0  # Redis is away: the watch queues it again

    def audio(self, pcm: bytes) -> None:
        """The caller's next audio frame; never blocks."""
        self.up.push(encode_audio(pcm))

    # -- agent -> caller ----------------------------------------------------------

    async def events(self) -> AsyncIterator[EdgeEvent]:
        down = self._down
        if down is None:
            raise RuntimeError("use the link as `async with` before reading its events")
        while not down.closed:
            raw = await down.get(timeout=1.0)
            if raw is not None:
                try:
                    numbered = decode_down(raw)
                except MalformedMessage as e:
                    log.warning("malformed bus message dropped", call_id=self.call_id, error=str(e))
                    continue
                if not self._inbox.accept(numbered.epoch, numbered.seq):
                    await self._ask_replay()
                    continue
                self._heard_at = time.monotonic()
                message = numbered.message
                if isinstance(message, Attached):
                    self._attached(message)
                yield message
            elif (tick := self._tick) is not None:
                # Nothing is waiting to be relayed: is the agent's tick ahead of us?
                self._tick = None
                self._inbox.tick(tick.epoch, tick.seq)
                await self._ask_replay()
            if self._failed is not None and self._failed.epoch >= self._inbox.epoch:
                yield AgentGaveUp()
                return
            async for event in self._watch():
                yield event

    def _attached(self, attached: Attached) -> None:
        """A new agent took the room (the first one, or after a failover or a
        handover): replay what it has not heard of the caller's audio."""
        if attached.replay_from is not None:
            # Frames of another (older) caller stream are not ours to replay: all
            # that this socket buffered is new to the agent.
            mine = attached.replay_epoch == self.up.epoch
            self.up.replay(self.up.epoch, attached.replay_from if mine else 0)
        self._served = self._ever_served = True
        self._told_waiting = False

    async def _read_control(self, control: Subscription) -> None:
        async for raw in control:
            try:
                message = decode_control(raw)
            except MalformedMessage:
                continue
            if isinstance(message, Replay) and message.stream == "up":
                self.up.replay(message.epoch, message.after)
            elif isinstance(message, Tick) and message.stream == "down":
                if message.epoch >= self._inbox.epoch:
                    self._heard_at = time.monotonic()
                    self._tick = message  # checked once what came before is relayed
            elif isinstance(message, AgentFailed):
                self._failed = message

    async def _ask_replay(self) -> None:
        if (after := self._inbox.replay_request()) is None:
            return
        request = Replay(stream="down", epoch=self._inbox.epoch, after=after)
        with contextlib.suppress(VoxfleetError):  # asked again after a second if lost
            await self._bus.publish(self._control_topic, encode(request))

    async def _watch(self) -> AsyncIterator[EdgeEvent]:
        """Is some agent serving the room? When the one that did went silent and
        nobody holds the room's lease, it died with no agent left to resume the
        room: queue it again, tell the caller it waits, give up in time."""
        now = time.monotonic()
        if self._served and now - self._heard_at > AGENT_SILENT_S:
            self._heard_at = now  # look again in AGENT_SILENT_S
            try:
                holder = await self._directory.holder(self.call_id)
            except VoxfleetError:
                holder = "?"  # Redis is away, and every agent's voice with it: wait
            if holder is None:
                log.warning("no agent serves the room", call_id=self.call_id)
                self._served = False
                self._waiting_since = now
                self._job_checked_at = 0.0  # queue it again now
        if self._served:
            return
        if not self._told_waiting and now - self._waiting_since > QUEUED_AFTER_S:
            self._told_waiting = True
            yield AgentWaiting()
        if now - self._waiting_since > self._attach_timeout:
            yield NoAgentInTime()
            return
        if now - self._job_checked_at > CHECK_JOB_EVERY_S:
            self._job_checked_at = now
            with contextlib.suppress(VoxfleetError):
                if self._job_id is None or not await self._queue.waiting(self._job_id):
                    await self._queue_job()

    # -- the end ------------------------------------------------------------------

    async def finish(self, reason: str) -> None:
        """Every agent must learn the call is over: the hang-up goes out in the
        caller's stream, the job leaves the queue, the room gets its tombstone.
        Each is retried while Redis is away; bound it with a timeout."""
        self.up.push(encode(Hangup(reason=reason)))
        backoff = Backoff(0.1, 2.0)
        job_gone, room_gone = self._job_id is None, False
        while True:
            try:
                if not job_gone and self._job_id is not None:
                    await self._queue.cancel(self._job_id)
                    job_gone = True
                if not room_gone:
                    await self._directory.end_room(self.call_id)
                    room_gone = True
                if await self.up.flush(timeout=1.0):
                    return
            except VoxfleetError as e:
                if not e.retryable:
                    raise
            await backoff.sleep()
