"""The edge's watch over its room's dispatch: is some agent serving the room,
is its job still queued while none does (a Redis restart loses the queue), and
is this caller socket still the call's one (the caller may have resumed on a
newer socket elsewhere)?

When the agent that served the room went silent and nobody holds the room's
lease, it died with no agent left to resume the room: the room is queued
again, the caller is told it waits, and the call is given up after the queue
timeout."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from voxfleet.dispatch.base import RoomDirectory, RoomJob, RoomQueue
from voxfleet.errors import VoxfleetError
from voxfleet.observability.logging import get_logger

log = get_logger(__name__)
QUEUED_AFTER_S = 1.0  # no agent within this: tell the caller it is queued
AGENT_SILENT_S = 3.0  # no word from the room's agent (it ticks every second): look for one
CHECK_JOB_EVERY_S = 5.0  # is the room's job still queued?
OWNER_CHECK_S = 1.0  # is this socket still the call's one?


@dataclass(slots=True, frozen=True)
class AgentWaiting:
    """No agent serves the call now; it waits in the queue."""


@dataclass(slots=True, frozen=True)
class NoAgentInTime:
    """No agent took the call within the queue timeout."""


@dataclass(slots=True, frozen=True)
class Replaced:
    """The caller resumed the call on a newer socket: this one has no call now."""


WatchEvent = AgentWaiting | NoAgentInTime | Replaced


class RoomWatch:
    def __init__(
        self,
        queue: RoomQueue,
        directory: RoomDirectory,
        call_id: str,
        profile: str,
        socket: int,
        attach_timeout: float,
        served: bool,
    ) -> None:
        self._queue = queue
        self._directory = directory
        self._call_id = call_id
        self._profile = profile
        self._socket = socket
        self._attach_timeout = attach_timeout
        now = time.monotonic()
        self._served = self._ever_served = served  # an agent serves the room now / did
        self._job_id: str | None = None
        self._job_checked_at = now
        self._owner_checked_at = now
        self._waiting_since = now
        self._told_waiting = False
        self._heard_at = now  # the serving agent's last word

    def heard(self) -> None:
        """The serving agent said something (or ticked)."""
        self._heard_at = time.monotonic()

    def attached(self) -> None:
        self._served = self._ever_served = True
        self._told_waiting = False

    async def queue_job(self) -> None:
        job = RoomJob(
            room_id=self._call_id,
            profile=self._profile,
            resume=self._ever_served,
            enqueued_at=time.time(),
        )
        try:
            self._job_id = await self._queue.put(job)
        except VoxfleetError:
            self._job_checked_at = 0.0  # Redis is away: queued again at the next check

    async def cancel_job(self) -> None:
        if self._job_id is not None:
            await self._queue.cancel(self._job_id)
            self._job_id = None

    async def owned(self) -> bool:
        """Is this socket still the call's one (no newer one took over)? Re-claims
        it when Redis forgot; raises while Redis is away."""
        current = await self._directory.socket_of(self._call_id)
        if current is None:
            return await self._directory.claim_socket(self._call_id, self._socket, self._socket)
        return current == self._socket

    async def check(self) -> AsyncIterator[WatchEvent]:
        """What the caller must learn now, if anything (cheap unless it is time
        to look at Redis)."""
        now = time.monotonic()
        if now - self._owner_checked_at > OWNER_CHECK_S:
            self._owner_checked_at = now
            with contextlib.suppress(VoxfleetError):
                if not await self.owned():
                    yield Replaced()
                    return
        if self._served and now - self._heard_at > AGENT_SILENT_S:
            self._heard_at = now  # look again in AGENT_SILENT_S
            try:
                holder = await self._directory.holder(self._call_id)
            except VoxfleetError:
                holder = "?"  # Redis is away, and every agent's voice with it: wait
            if holder is None:
                log.warning("no agent serves the room", call_id=self._call_id)
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
                    await self.queue_job()
