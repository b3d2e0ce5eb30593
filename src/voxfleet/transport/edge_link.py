"""The edge's end of a room on the bus: the caller's numbered ``up`` stream
out, the serving agent's numbered ``down`` stream in (transport/stream.py),
ticks and replay requests on the control topic, and a watch on who serves the
room (transport/room_watch.py). When the call ends, every agent learns it: the
hang-up goes out, the job leaves the queue and the room gets its tombstone."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType

from voxfleet.aio import Backoff, TaskSet
from voxfleet.bus.base import Bus, Subscription, room_control, room_down, room_up
from voxfleet.dispatch.base import RoomDirectory, RoomQueue
from voxfleet.errors import MalformedMessage, VoxfleetError
from voxfleet.messages.client import AgentMessage
from voxfleet.messages.room import (
    AgentFailed,
    Attached,
    AudioFrame,
    Hangup,
    Heard,
    Replay,
    Resuming,
    Tick,
    decode_control,
    decode_down,
    encode,
    encode_audio,
)
from voxfleet.observability.logging import get_logger
from voxfleet.transport.room_watch import RoomWatch, WatchEvent
from voxfleet.transport.stream import Inbox, Outbox

log = get_logger(__name__)
HEARD_TIMEOUT_S = 1.0  # a resumed socket waits this long to learn what the agent heard


@dataclass(slots=True, frozen=True)
class AgentGaveUp:
    """The agent could not serve the call."""


EdgeEvent = Attached | AudioFrame | AgentMessage | AgentGaveUp | WatchEvent


@dataclass(slots=True, frozen=True)
class Dispatch:
    """What the edge needs to reach agents: the bus, the queue, the directory."""

    bus: Bus
    queue: RoomQueue
    directory: RoomDirectory


class EdgeRoomLink:
    """Use as ``async with``; ``events()`` yields what the caller must learn."""

    def __init__(
        self,
        dispatch: Dispatch,
        call_id: str,
        profile: str,
        attach_timeout: float,
        socket: int,
        resumed: bool = False,
        served: bool = False,
    ) -> None:
        """``socket``: the caller socket's epoch, which also numbers its stream.
        ``resumed``: the caller came back to its call: no new job, and the
        agent's stream is joined where it is now, not replayed; ``served``: an
        agent serves the call already."""
        self.call_id = call_id
        bus = self._bus = dispatch.bus
        self._directory = dispatch.directory
        self._profile = profile
        self._attach_timeout = attach_timeout
        self.socket = socket
        self._resumed = resumed
        self._control_topic = room_control(call_id)
        self.up = Outbox(bus, room_up(call_id), self._control_topic, "up", socket)
        # A resumed socket joins the agent's stream; audio starts at the next
        # clause, so what was lost in flight is not played as half a word.
        self._inbox = Inbox(last=None) if resumed else Inbox()
        self._mid_clause = resumed
        self._tasks = TaskSet(f"edge:{call_id}")
        self._down: Subscription | None = None
        self._control: Subscription | None = None
        self.watch = RoomWatch(
            dispatch.queue,
            dispatch.directory,
            call_id,
            profile,
            socket,
            attach_timeout,
            served,
        )
        self._tick: Tick | None = None
        self._heard: dict[int, asyncio.Future[int]] = {}
        self._failed: AgentFailed | None = None

    async def __aenter__(self) -> EdgeRoomLink:
        self._down = await self._subscribe(room_down(self.call_id))
        try:
            self._control = await self._subscribe(self._control_topic)
        except BaseException:
            await self._down.close()
            raise
        self._tasks.spawn(self.up.run(), "up")
        self._ticks = self._tasks.spawn(self.up.ticks(), "up-ticks")
        self._tasks.spawn(self._read_control(self._control), "control")
        if not self._resumed:  # a resumed call's first socket queued it
            await self.watch.queue_job()
        return self

    def park(self) -> None:
        """The socket dropped: stop telling the agent an edge is here (it ends
        the room if nobody resumes it in time), and wait for a resume."""
        self._ticks.cancel()

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

    async def heard_of(self, old: int, timeout: float = HEARD_TIMEOUT_S) -> int | None:
        """The caller resumed from socket ``old``: how many of its frames the
        agent took (it takes no more of them now); None when no agent answers."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._heard[old] = future
        try:
            async with asyncio.timeout(timeout):
                await self._bus.publish(
                    self._control_topic, encode(Resuming(old=old, new=self.socket))
                )
                return await future
        except (TimeoutError, VoxfleetError):
            return None
        finally:
            self._heard.pop(old, None)

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
                self.watch.heard()
                message = numbered.message
                if isinstance(message, Attached):
                    self._attached(message)
                if isinstance(message, AudioFrame) and self._mid_clause:
                    continue
                self._mid_clause = False
                yield message
            elif (tick := self._tick) is not None:
                # Nothing is waiting to be relayed: is the agent's tick ahead of us?
                self._tick = None
                self._inbox.tick(tick.epoch, tick.seq)
                await self._ask_replay()
            if self._failed is not None and self._failed.epoch >= self._inbox.epoch:
                yield AgentGaveUp()
                return
            async for event in self.watch.check():
                yield event

    def _attached(self, attached: Attached) -> None:
        """A new agent took the room (the first one, or after a failover or a
        handover): replay what it has not heard of the caller's audio."""
        if attached.replay_from is not None:
            # Frames of another (older) caller stream are not ours to replay: all
            # that this socket buffered is new to the agent.
            mine = attached.replay_epoch == self.up.epoch
            self.up.replay(self.up.epoch, attached.replay_from if mine else 0)
        self.watch.attached()

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
                    self.watch.heard()
                    self._tick = message  # checked once what came before is relayed
            elif isinstance(message, AgentFailed):
                self._failed = message
            elif isinstance(message, Heard) and message.epoch in self._heard:
                future = self._heard.pop(message.epoch)
                if not future.done():
                    future.set_result(message.seq)

    async def _ask_replay(self) -> None:
        if (after := self._inbox.replay_request()) is None:
            return
        request = Replay(stream="down", epoch=self._inbox.epoch, after=after)
        with contextlib.suppress(VoxfleetError):  # asked again after a second if lost
            await self._bus.publish(self._control_topic, encode(request))

    # -- the end ------------------------------------------------------------------

    async def finish(self, reason: str) -> None:
        """Every agent must learn the call is over: the hang-up goes out in the
        caller's stream, the job leaves the queue, the room gets its tombstone.
        Each is retried while Redis is away; bound it with a timeout."""
        self.up.push(encode(Hangup(reason=reason)))
        backoff = Backoff(0.1, 2.0)
        room_gone = False
        while True:
            try:
                await self.watch.cancel_job()
                if not room_gone:
                    await self._directory.end_room(self.call_id)
                    room_gone = True
                if await self.up.flush(timeout=1.0):
                    return
            except VoxfleetError as e:
                if not e.retryable:
                    raise
            await backoff.sleep()
