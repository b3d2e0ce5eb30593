"""The caller's side of a LiveKit room, as the session's InboundLink, without
the network: the link (link.py) calls the entry points below from the SDK's
events, and the session reads ``events()``.

LiveKit keeps no history of a track: what the agent did not take is gone. So
frames are numbered here (a local epoch and counter), and what arrives while
the room is held waits in a bounded buffer instead of being asked for again
from an edge, as the bus link does."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from livekit import rtc

from voxfleet.domain.calls import EndReason
from voxfleet.errors import ProtocolError
from voxfleet.messages.client import End, parse_client_message
from voxfleet.observability.logging import get_logger
from voxfleet.pipeline.ports import (
    AudioIn,
    CallerEvent,
    CallerGone,
    CallerHungUp,
    InboundLink,
    StreamPosition,
)
from voxfleet.transport.bus_link import new_epoch
from voxfleet.transport.livekit.frames import FRAME_MS, CallerFrames

log = get_logger(__name__)
CALLER = "caller"  # the caller's identity in its room (shared with the landing's tokens)
TOPIC = "voxfleet"  # data packets of our protocol, both ways
HOLD_SECONDS = 30.0
ROOM_ENDED = "room_ended"  # as the session names a call ended under it
_ROOM_GONE = (rtc.DisconnectReason.ROOM_DELETED, rtc.DisconnectReason.ROOM_CLOSED)


@dataclass(slots=True, frozen=True)
class CallerTiming:
    """``resume_window``: a caller who left may come back this long (a reload,
    another network). ``join_window``: a caller not yet seen may still join this
    long (its token admits a join so long). ``gone_after``: the agent's own
    connection may be reconnecting this long."""

    resume_window: float
    join_window: float
    gone_after: float


class CallerFeed(InboundLink):
    def __init__(
        self,
        timing: CallerTiming,
        seen: bool = False,
        hold_seconds: float = HOLD_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.epoch = new_epoch()
        self._seq = 0
        self._timing = timing
        self._clock = clock
        self._frames = CallerFrames()
        # Frames not yet taken: a few while the session keeps up, up to
        # ``hold_seconds`` while held; past that the oldest go (and are counted).
        self._pending: deque[AudioIn] = deque(maxlen=int(hold_seconds * 1000 / FRAME_MS))
        self.dropped = 0
        self._held = False
        self._seen = seen  # a resumed room's caller was on the call already
        self._absent_since: float | None = clock()  # the caller is not in the room
        self._lost_since: float | None = None  # our connection is reconnecting
        self._end: CallerEvent | None = None
        self._leave = False  # stop without an event: the room is someone else's
        self._wake = asyncio.Event()

    # -- entry points (the SDK's events) -------------------------------------------

    def audio(self, frame: rtc.AudioFrame) -> None:
        """A frame of the caller's audio track, in any shape LiveKit gives."""
        for pcm in self._frames.push(frame):
            self._seq += 1
            if len(self._pending) == self._pending.maxlen:
                if self.dropped == 0:
                    log.warning("caller audio buffer full, oldest frames dropped")
                self.dropped += 1
            self._pending.append(AudioIn(pcm, StreamPosition(self.epoch, self._seq)))
        self._wake.set()

    def new_track(self) -> None:
        self._frames.reset()

    def joined(self, identity: str) -> None:
        if identity == CALLER:
            self._seen = True
            self._absent_since = None

    def left(self, identity: str, hung_up: bool = False) -> None:
        """The caller's participant left the room. ``hung_up``: it left on
        purpose (the page's hang-up disconnects; its token may not send data),
        and the call ends now. Otherwise it has the resume window to come back
        (a reload, a network change) before the call ends."""
        if identity != CALLER:
            return
        if hung_up:
            self._finish(CallerHungUp(EndReason.CALLER_ENDED.value))
        elif self._absent_since is None:
            self._absent_since = self._clock()
            self._wake.set()

    def data(self, payload: bytes, identity: str | None, topic: str | None) -> None:
        """A data packet: the caller's ``{"type": "end"}`` hangs up at once, as
        on the media socket."""
        if identity != CALLER or topic != TOPIC:
            return
        try:
            message = parse_client_message(payload.decode("utf-8", errors="replace"))
        except ProtocolError as e:
            log.warning("bad data message from caller dropped", code=e.code)
            return
        if isinstance(message, End):
            self._finish(CallerHungUp(EndReason.CALLER_ENDED.value))

    def reconnecting(self) -> None:
        if self._lost_since is None:
            self._lost_since = self._clock()
            self._wake.set()

    def reconnected(self) -> None:
        self._lost_since = None

    def disconnected(self, reason: rtc.DisconnectReason.ValueType) -> None:
        """The agent is out of the room. Deleted or closed: the call is over.
        Our own leave: nothing to tell. Another process joined as this agent:
        leave without ending the call. Else the SDK gave up reconnecting."""
        if reason in _ROOM_GONE:
            self._finish(CallerHungUp(ROOM_ENDED))
        elif reason == rtc.DisconnectReason.DUPLICATE_IDENTITY:
            self._leave = True
            self._wake.set()
        elif reason != rtc.DisconnectReason.CLIENT_INITIATED:
            self._finish(CallerGone())

    # -- InboundLink ---------------------------------------------------------------

    def hold(self) -> None:
        self._held = True

    def release(self) -> None:
        self._held = False
        if self.dropped:
            log.warning("caller audio dropped while held", frames=self.dropped)
            self.dropped = 0
        self._wake.set()

    async def events(self) -> AsyncIterator[CallerEvent]:
        """Audio in order, then a hang-up or gone. While held only the end
        passes (the call is over; the frames waiting have no one to answer)."""
        while True:
            if self._pending and not self._held:
                yield self._pending.popleft()
                continue
            if self._leave:
                return
            end = self._end or self.due(self._clock())
            if end is not None:
                self._end = end
                yield end
                return
            self._wake.clear()
            try:
                async with asyncio.timeout(self._next_check()):
                    await self._wake.wait()
            except TimeoutError:
                pass

    def due(self, now: float) -> CallerEvent | None:
        """The end the clock has brought, if any."""
        t = self._timing
        if self._lost_since is not None and now - self._lost_since >= t.gone_after:
            return CallerGone()
        if self._absent_since is not None:
            window = t.resume_window if self._seen else t.join_window
            if now - self._absent_since >= window:
                reason = EndReason.CALLER_DISCONNECTED if self._seen else EndReason.NEVER_CONNECTED
                return CallerHungUp(reason.value)
        return None

    def _finish(self, event: CallerEvent) -> None:
        if self._end is None:
            self._end = event
        self._wake.set()

    def _next_check(self) -> float | None:
        now, t = self._clock(), self._timing
        waits = []
        if self._lost_since is not None:
            waits.append(self._lost_since + t.gone_after - now)
        if self._absent_since is not None:
            window = t.resume_window if self._seen else t.join_window
            waits.append(self._absent_since + window - now)
        return max(0.0, min(waits)) if waits else None
