"""In-process dispatch for ``voxfleet up``: the same interfaces as the Redis
runtime, in one process. State is kept as JSON text, exactly as Redis keeps it,
so nothing can hold a live reference to another's state."""

from __future__ import annotations

import asyncio
import itertools
import time

from voxfleet.dispatch.base import (
    TOMBSTONE_SECONDS,
    AgentInfo,
    AgentRegistry,
    Lease,
    LeaseLost,
    RoomDirectory,
    RoomEnded,
    RoomJob,
    RoomQueue,
)
from voxfleet.domain.conversation import ConversationState


class InProcessRoomQueue(RoomQueue):
    def __init__(self) -> None:
        self._waiting: dict[str, RoomJob] = {}  # insertion order is queue order
        self._taken: set[str] = set()
        self._added = asyncio.Event()
        self._ids = itertools.count(1)

    async def put(self, job: RoomJob) -> str:
        job_id = str(next(self._ids))
        self._waiting[job_id] = job.model_copy(update={"job_id": job_id})
        self._added.set()
        return job_id

    async def take(self, consumer: str, timeout: float | None = None) -> RoomJob | None:
        try:
            async with asyncio.timeout(timeout):
                while not self._waiting:
                    self._added.clear()
                    await self._added.wait()
        except TimeoutError:
            return None
        job_id = next(iter(self._waiting))
        self._taken.add(job_id)
        return self._waiting.pop(job_id)

    async def done(self, job: RoomJob) -> None:
        self._taken.discard(job.job_id)

    async def cancel(self, job_id: str) -> None:
        self._waiting.pop(job_id, None)
        self._taken.discard(job_id)

    async def waiting(self, job_id: str) -> bool:
        return job_id in self._waiting or job_id in self._taken

    async def depth(self) -> int:
        return len(self._waiting)


class InProcessRoomDirectory(RoomDirectory):
    def __init__(self, lease_ttl: float = 3.0) -> None:
        self.lease_ttl = lease_ttl
        self._leases: dict[str, tuple[Lease, float]] = {}  # room -> (lease, expires)
        self._rooms: dict[str, str] = {}  # room -> profile
        self._states: dict[str, str] = {}
        self._fences: dict[str, int] = {}
        self._requeued: dict[str, float] = {}
        self._ended: dict[str, float] = {}  # room -> when its tombstone goes
        self._sockets: dict[str, int] = {}

    def _check_live(self, room_id: str) -> None:
        now = time.monotonic()
        for room, until in list(self._ended.items()):
            if until < now:
                del self._ended[room]
        if room_id in self._ended:
            raise RoomEnded(f"room {room_id}: the call is over")

    def _current(self, room_id: str) -> Lease | None:
        held = self._leases.get(room_id)
        if held is None or held[1] < time.monotonic():
            return None
        return held[0]

    async def acquire(
        self, room_id: str, agent_id: str, profile: str, takeover_fence: int | None = None
    ) -> Lease | None:
        self._check_live(room_id)
        current = self._current(room_id)
        if current is not None and current.agent_id != agent_id and current.fence != takeover_fence:
            return None
        fence = self._fences.get(room_id, 0) + 1
        self._fences[room_id] = fence
        lease = Lease(room_id=room_id, agent_id=agent_id, fence=fence)
        self._leases[room_id] = (lease, time.monotonic() + self.lease_ttl)
        self._rooms[room_id] = profile
        return lease

    async def renew(self, lease: Lease) -> bool:
        self._check_live(lease.room_id)
        current = self._current(lease.room_id)
        if current != lease and (
            current is not None or self._fences.get(lease.room_id, 0) > lease.fence
        ):
            return False  # someone took a newer fence
        self._leases[lease.room_id] = (lease, time.monotonic() + self.lease_ttl)
        return True

    async def holder(self, room_id: str) -> str | None:
        current = self._current(room_id)
        return None if current is None else current.agent_id

    async def release(self, lease: Lease) -> None:
        if self._current(lease.room_id) == lease:
            del self._leases[lease.room_id]

    async def orphans(self) -> list[tuple[str, str]]:
        return [(r, p) for r, p in self._rooms.items() if self._current(r) is None]

    async def mark_requeued(self, room_id: str, hold: float = 5.0) -> bool:
        now = time.monotonic()
        if self._requeued.get(room_id, 0.0) > now:
            return False
        self._requeued[room_id] = now + hold
        return True

    async def rooms(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for room_id in self._rooms:
            lease = self._current(room_id)
            out[room_id] = lease.agent_id if lease else ""
        return out

    async def load_state(self, room_id: str) -> ConversationState | None:
        raw = self._states.get(room_id)
        return None if raw is None else ConversationState.model_validate_json(raw)

    async def save_state(self, state: ConversationState, lease: Lease) -> None:
        self._check_live(state.room_id)
        if self._current(state.room_id) != lease:
            raise LeaseLost(f"room {state.room_id}: lease fence {lease.fence} is stale")
        self._states[state.room_id] = state.model_dump_json()

    async def claim_socket(self, room_id: str, epoch: int, replaces: int | None) -> bool:
        self._check_live(room_id)
        current = self._sockets.get(room_id)
        if current is not None and current != replaces:
            return False
        self._sockets[room_id] = epoch
        return True

    async def socket_of(self, room_id: str) -> int | None:
        return self._sockets.get(room_id)

    async def end_room(self, room_id: str) -> None:
        self._sockets.pop(room_id, None)
        self._states.pop(room_id, None)
        self._rooms.pop(room_id, None)
        self._leases.pop(room_id, None)
        self._fences.pop(room_id, None)
        self._requeued.pop(room_id, None)
        self._ended[room_id] = time.monotonic() + TOMBSTONE_SECONDS


class InProcessAgentRegistry(AgentRegistry):
    def __init__(self, heartbeat_interval: float = 1.0) -> None:
        self.heartbeat_interval = heartbeat_interval
        self._agents: dict[str, AgentInfo] = {}

    async def heartbeat(self, info: AgentInfo) -> None:
        self._agents[info.agent_id] = info

    async def agents(self) -> list[AgentInfo]:
        horizon = time.time() - 3 * self.heartbeat_interval
        return [a for a in self._agents.values() if a.seen >= horizon]

    async def remove(self, agent_id: str) -> None:
        self._agents.pop(agent_id, None)
