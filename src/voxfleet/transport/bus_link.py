"""The agent's end of a room on the bus: the RoomSession's inbound and
outbound link when media runs through the built-in WebSocket edge.

In: the edge's numbered ``up`` stream (caller audio, the hang-up), taken once
each and in order, a replay asked for on a gap (transport/stream.py); the
edge's ticks on the control topic reveal trailing losses and prove the edge is
alive. Out: the numbered ``down`` stream (``attached``, audio, captions,
states), kept and replayed when the edge missed some."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from types import TracebackType

from voxfleet.aio import TaskSet
from voxfleet.bus.base import Bus, Subscription, room_control, room_down, room_up
from voxfleet.errors import MalformedMessage, VoxfleetError
from voxfleet.messages.client import AgentMessage
from voxfleet.messages.room import (
    Attached,
    AudioFrame,
    Heard,
    Replay,
    Resuming,
    Tick,
    decode_control,
    decode_up,
    encode,
    encode_audio,
)
from voxfleet.observability.logging import get_logger
from voxfleet.pipeline.ports import (
    AudioIn,
    CallerEvent,
    CallerGone,
    CallerHungUp,
    InboundLink,
    OutboundLink,
    StreamPosition,
)
from voxfleet.transport.stream import Inbox, Outbox

log = get_logger(__name__)
CALLER_GONE_SECONDS = 30.0
FLUSH_ON_LEAVE_S = 0.5  # what the session said last gets this long to reach the bus


def new_epoch() -> int:
    """Epochs order producers of one stream: microseconds of wall-clock time,
    so a producer that starts later (a new agent after a failover, a caller's
    new socket) has the larger one, whichever process it runs in."""
    return time.time_ns() // 1000


class BusRoomLink(InboundLink, OutboundLink):
    """Use as ``async with``: it subscribes, and runs its sender's pump and ticks.
    ``start``: where in the caller's stream the room has heard up to (None: join
    the caller's audio where it is now)."""

    def __init__(
        self,
        bus: Bus,
        room_id: str,
        start: StreamPosition | None,
        caller_gone_after: float = CALLER_GONE_SECONDS,
    ) -> None:
        self.room_id = room_id
        self._bus = bus
        self._control_topic = room_control(room_id)
        self.outbox = Outbox(bus, room_down(room_id), self._control_topic, "down", new_epoch())
        self._inbox = Inbox(last=None) if start is None else Inbox(start.epoch, start.seq)
        self._gone_after = caller_gone_after
        self._heard_at = time.monotonic()
        self._held = False
        self._missed = False
        self._tick: Tick | None = None  # the edge's latest, not yet checked
        self._tasks = TaskSet(f"link:{room_id}")
        self._up: Subscription | None = None
        self._control: Subscription | None = None

    async def __aenter__(self) -> BusRoomLink:
        self._up = await self._bus.subscribe(room_up(self.room_id))
        try:
            self._control = await self._bus.subscribe(self._control_topic)
        except BaseException:
            await self._up.close()
            raise
        self._tasks.spawn(self.outbox.run(), "down")
        self._tasks.spawn(self.outbox.ticks(), "down-ticks")
        self._tasks.spawn(self._read_control(self._control), "control")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            await self.outbox.flush(FLUSH_ON_LEAVE_S)
        await self._tasks.cancel_all()
        for sub in (self._up, self._control):
            if sub is not None:
                await sub.close()

    # -- out ----------------------------------------------------------------------

    async def attach(self, attached: Attached) -> None:
        """The first message of this agent's stream: it serves the room now."""
        self.outbox.push(encode(attached))

    async def audio(self, pcm: bytes) -> None:
        self.outbox.push(encode_audio(pcm))

    async def send(self, message: AgentMessage) -> None:
        self.outbox.push(encode(message))

    # -- in -----------------------------------------------------------------------

    def hold(self) -> None:
        self._held = True

    def release(self) -> None:
        if not self._held:
            return
        self._held = False
        self._heard_at = time.monotonic()
        if self._missed:
            self._missed = False
            self._inbox.missed()

    async def events(self) -> AsyncIterator[CallerEvent]:
        up = self._up
        if up is None:
            raise RuntimeError("use the link as `async with` before reading its events")
        while True:
            raw = await up.get(timeout=1.0)
            now = time.monotonic()
            if raw is None:
                if up.closed:
                    return
                if self._held:  # the room hears nothing now; silence is not the edge's
                    self._heard_at = now
                elif now - self._heard_at > self._gone_after:
                    yield CallerGone()
                    return
                # Nothing is waiting to be taken: is the edge's tick ahead of us?
                if (tick := self._tick) is not None and not self._held:
                    self._tick = None
                    self._inbox.tick(tick.epoch, tick.seq)
                await self._ask_replay()
                continue
            self._heard_at = now
            try:
                numbered = decode_up(raw)
            except MalformedMessage as e:
                log.warning("malformed bus message dropped", room=self.room_id, error=e.message)
                continue
            if self._held:
                self._missed = True
                continue
            if not self._inbox.accept(numbered.epoch, numbered.seq):
                await self._ask_replay()
                continue
            message = numbered.message
            if isinstance(message, AudioFrame):
                yield AudioIn(message.pcm, StreamPosition(numbered.epoch, numbered.seq))
            else:
                yield CallerHungUp(message.reason)
                return

    async def _read_control(self, control: Subscription) -> None:
        async for raw in control:
            try:
                message = decode_control(raw)
            except MalformedMessage:
                continue
            if isinstance(message, Tick) and message.stream == "up":
                # Checked when the audio before it has been taken (see events).
                self._heard_at = time.monotonic()
                self._tick = message
            elif isinstance(message, Replay) and message.stream == "down":
                self.outbox.replay(message.epoch, message.after)
            elif isinstance(message, Resuming):
                # The caller resumed: the old socket's frames stop here, and the
                # caller sends what came after on its new one.
                taken = self._inbox.close_epoch(message.old, message.new)
                if taken is not None:
                    with contextlib.suppress(VoxfleetError):
                        heard = Heard(epoch=message.old, seq=taken)
                        await self._bus.publish(self._control_topic, encode(heard))

    async def _ask_replay(self) -> None:
        """Ask the edge for the caller's audio after the last frame taken: once
        per gap, again a second later if the request itself was lost."""
        if self._held or (after := self._inbox.replay_request()) is None:
            return
        request = Replay(stream="up", epoch=self._inbox.epoch, after=after)
        with contextlib.suppress(VoxfleetError):
            await self._bus.publish(self._control_topic, encode(request))
