"""Interfaces of the dispatch layer: the queue of rooms waiting for an agent,
the directory of rooms being served (leases with fencing, and each room's
conversation state), and the registry of live agents. In-process
implementations serve ``voxfleet up``; Redis ones serve the distributed roles."""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable

from pydantic import BaseModel

from voxfleet.aio import Backoff
from voxfleet.domain.conversation import ConversationState
from voxfleet.errors import LeaseLost, RoomEnded, VoxfleetError
from voxfleet.observability.logging import get_logger

__all__ = ["LeaseLost", "RoomEnded"]  # re-exported: every user of leases meets them
log = get_logger(__name__)
TOMBSTONE_SECONDS = 3600.0  # an ended room stays ended this long (longer than any job waits)


class RoomJob(BaseModel):
    """A room waiting for an agent. ``resume`` is set when the room already had
    one (failover or handover): the new agent restores state and skips the
    greeting. ``handover_from`` names the draining agent that asked for it."""

    room_id: str
    profile: str
    resume: bool = False
    handover_from: str | None = None
    handover_fence: int | None = None
    enqueued_at: float
    job_id: str = ""  # set by the queue on take()


class RoomQueue(ABC):
    @abstractmethod
    async def put(self, job: RoomJob) -> str:
        """Queue ``job``; returns its id (for ``cancel`` and ``waiting``)."""

    @abstractmethod
    async def take(self, consumer: str, timeout: float | None = None) -> RoomJob | None:
        """The oldest waiting room, or None after ``timeout`` seconds. The job
        stays claimable by others until ``done`` (a consumer that dies between
        the two does not lose it)."""

    @abstractmethod
    async def done(self, job: RoomJob) -> None: ...

    @abstractmethod
    async def cancel(self, job_id: str) -> None:
        """Remove a job nobody needs any more (its call ended while it waited)."""

    @abstractmethod
    async def waiting(self, job_id: str) -> bool:
        """True while the job is queued or taken but not done: False once it is
        done, cancelled, or lost (a Redis restart without persistence)."""

    @abstractmethod
    async def depth(self) -> int:
        """Rooms waiting for an agent."""


class Lease(BaseModel):
    """The right to serve a room. ``fence`` grows with every new holder; writes
    carry it, so a holder that lost the lease cannot overwrite its successor."""

    room_id: str
    agent_id: str
    fence: int


class RoomDirectory(ABC):
    """Rooms being served: who holds each (leases), and each room's state."""

    lease_ttl: float

    @abstractmethod
    async def acquire(
        self, room_id: str, agent_id: str, profile: str, takeover_fence: int | None = None
    ) -> Lease | None:
        """Take the room's lease: when nobody holds it, when we hold it already
        (a new fence), or when the holder's fence is ``takeover_fence`` (a
        handover it offered). None when another agent holds it; RoomEnded when
        the room's call is over."""

    @abstractmethod
    async def renew(self, lease: Lease) -> bool:
        """Extend the lease; False when it is no longer ours; RoomEnded when the
        call is over. A lease Redis lost (a restart, a failover that dropped
        recent writes) is ours again if nobody took a newer fence meanwhile."""

    @abstractmethod
    async def holder(self, room_id: str) -> str | None:
        """The agent holding the room's lease now, if any."""

    @abstractmethod
    async def release(self, lease: Lease) -> None: ...

    @abstractmethod
    async def orphans(self) -> list[tuple[str, str]]:
        """(room id, profile) of live rooms whose lease lapsed: their agent died."""

    @abstractmethod
    async def mark_requeued(self, room_id: str, hold: float = 5.0) -> bool:
        """True for the one caller that gets to re-queue an orphaned room within
        ``hold`` seconds (every agent watches for orphans; one re-queues)."""

    @abstractmethod
    async def rooms(self) -> dict[str, str]:
        """Live rooms -> the agent serving them."""

    @abstractmethod
    async def load_state(self, room_id: str) -> ConversationState | None: ...

    @abstractmethod
    async def save_state(self, state: ConversationState, lease: Lease) -> None:
        """Save, fenced: raises LeaseLost if ``lease`` is no longer current,
        RoomEnded if the call is over."""

    @abstractmethod
    async def claim_socket(self, room_id: str, epoch: int, replaces: int | None) -> bool:
        """Make caller socket ``epoch`` the room's one socket: when the room has
        none yet (``replaces`` None: the call's first socket), or when its
        socket is ``replaces`` (the same caller resuming after a drop) or was
        forgotten (Redis lost it). False for a second socket or a stale resume;
        RoomEnded when the call is over."""

    @abstractmethod
    async def socket_of(self, room_id: str) -> int | None:
        """The room's caller socket now (None: none claimed, or forgotten)."""

    @abstractmethod
    async def end_room(self, room_id: str) -> None:
        """The call is over: forget the room, its state and its lease, and leave
        a tombstone so that no agent takes, keeps or saves the room again."""


class AgentInfo(BaseModel):
    agent_id: str
    capacity: int
    active: int
    ready: bool
    draining: bool
    seen: float  # epoch seconds of the last heartbeat
    loop_lag_ms: float | None = None  # worst event-loop lag of the last seconds, if measured
    # Share of its local models' time busy over the last 10 s (None: hosted models).
    model_load: float | None = None


class AgentRegistry(ABC):
    heartbeat_interval: float

    @abstractmethod
    async def heartbeat(self, info: AgentInfo) -> None: ...

    @abstractmethod
    async def agents(self) -> list[AgentInfo]:
        """Agents heard from within three heartbeat intervals."""

    @abstractmethod
    async def remove(self, agent_id: str) -> None: ...


class RoomStateStore(ABC):
    """Where a RoomSession saves its own room's state."""

    @abstractmethod
    async def save(self, state: ConversationState) -> None:
        """Save; only LeaseLost or RoomEnded (the room is not ours any more)
        come out of it."""


class FencedStateStore(RoomStateStore):
    """Saves through the directory with the session's lease, so a session whose
    lease moved on gets LeaseLost instead of overwriting its successor. While
    Redis is unreachable a save waits and tries again: the turn it records
    must not be lost, and until the lease is confirmed the room is paused."""

    def __init__(self, directory: RoomDirectory, lease: Lease) -> None:
        self._directory = directory
        self.lease = lease

    async def save(self, state: ConversationState) -> None:
        state.version += 1
        backoff = Backoff(0.05, 1.0)
        while True:
            try:
                await self._directory.save_state(state, self.lease)
                return
            except VoxfleetError as e:
                if not e.retryable:
                    raise
                if backoff.failures == 0:
                    log.warning("state not saved, retrying", room=state.room_id, error=e.code)
                await backoff.sleep()


async def keep_beating(registry: AgentRegistry, info: Callable[[], AgentInfo]) -> None:
    """Tell the registry, every heartbeat interval, that the agent lives and
    how it is (``info()``), until cancelled; a beat Redis misses is skipped."""
    while True:
        with contextlib.suppress(VoxfleetError):
            await registry.heartbeat(info())
        await asyncio.sleep(registry.heartbeat_interval)
