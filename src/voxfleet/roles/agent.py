"""The agent worker: claims rooms from the queue while it has capacity and runs
one RoomSession per room, holding each room's lease by heartbeat.

Rooms move: a room comes with its state from the directory, so it can come
from another worker. Every worker watches for rooms whose lease lapsed (their
agent died) and re-queues them as resumes. On drain (SIGTERM) a worker stops
claiming and hands each room over at a turn boundary: it offers the room with
its current fence, keeps serving until another agent has taken the lease
(make-before-break), and keeps the room if nobody can take it."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass
from typing import Any

from voxfleet.aio import TaskSet, cancel_and_wait
from voxfleet.bus.base import Bus, room_down, room_up
from voxfleet.bus.messages import encode_audio, encode_control
from voxfleet.dispatch.base import (
    AgentInfo,
    AgentRegistry,
    FencedStateStore,
    RoomDirectory,
    RoomJob,
    RoomQueue,
)
from voxfleet.domain.conversation import ConversationState
from voxfleet.domain.profiles import Profiles
from voxfleet.errors import VoxfleetError
from voxfleet.observability.logging import get_logger
from voxfleet.observability.metrics import (
    ACTIVE_ROOMS,
    DISPATCH_SECONDS,
    FAILOVERS,
    HANDOVERS,
)
from voxfleet.pipeline.endpointing import EndpointConfig
from voxfleet.pipeline.session import RoomLink, RoomSession, TurnSink
from voxfleet.providers.base import Providers

log = get_logger(__name__)
REAP_INTERVAL = 0.2
HANDOVER_WAIT = 3.0  # an offered room not taken within this stays with us


class BusRoomLink(RoomLink):
    """Publishes to the room's down topic; a bus outage drops the message (the
    turn is still stored) rather than failing the reply."""

    def __init__(self, bus: Bus, room_id: str) -> None:
        self._bus = bus
        self._topic = room_down(room_id)

    async def send_audio(self, pcm: bytes) -> None:
        with contextlib.suppress(VoxfleetError):
            await self._bus.publish(self._topic, encode_audio(pcm))

    async def send(self, type_: str, **body: Any) -> None:
        try:
            await self._bus.publish(self._topic, encode_control(type_, **body))
        except VoxfleetError as e:
            log.warning("message to caller lost", topic=self._topic, type=type_, error=e.code)


@dataclass(slots=True)
class _Room:
    session: RoomSession
    store: FencedStateStore
    profile: str


class AgentWorker:
    def __init__(
        self,
        providers: Providers,
        profiles: Profiles,
        bus: Bus,
        queue: RoomQueue,
        directory: RoomDirectory,
        registry: AgentRegistry,
        sink: TurnSink,
        capacity: int,
        endpointing: EndpointConfig | None = None,
        agent_id: str | None = None,
    ) -> None:
        self.agent_id = agent_id or f"agent-{uuid.uuid4().hex[:8]}"
        self._providers = providers
        self._profiles = profiles
        self._bus = bus
        self._queue = queue
        self._directory = directory
        self._registry = registry
        self._sink = sink
        self.capacity = capacity
        self._endpointing = endpointing
        self._tasks = TaskSet(self.agent_id)
        self._slots = asyncio.Semaphore(capacity)
        self.rooms: dict[str, _Room] = {}
        self.draining = False
        self._hand_over_rooms = True
        self.ready = False

    # -- main loops -------------------------------------------------------------

    async def run(self) -> None:
        """Claim and serve rooms until cancelled."""
        self.ready = True
        log.info("agent ready", agent_id=self.agent_id, capacity=self.capacity)
        loops = [
            self._tasks.spawn(self._claim_loop(), "claim"),
            self._tasks.spawn(self._heartbeat_loop(), "heartbeat"),
            self._tasks.spawn(self._reap_loop(), "reap"),
        ]
        try:
            await asyncio.gather(*loops)
        finally:
            self.ready = False
            await self._tasks.cancel_all()
            with contextlib.suppress(VoxfleetError, OSError):
                await self._registry.remove(self.agent_id)

    async def _claim_loop(self) -> None:
        while not self.draining:
            await self._slots.acquire()
            if self.draining:
                self._slots.release()
                return
            try:
                job = await self._queue.take(self.agent_id, timeout=1.0)
            except (VoxfleetError, OSError) as e:
                self._slots.release()
                log.warning("queue unavailable", agent_id=self.agent_id, error=str(e))
                await asyncio.sleep(0.5)
                continue
            if job is None or self.draining:
                self._slots.release()
                if job is not None:  # drain began while we waited: give it back
                    await self._queue.put(job.model_copy(update={"job_id": ""}))
                    await self._queue.done(job)
                continue
            self._tasks.spawn(self._serve(job), job.room_id)

    async def _heartbeat_loop(self) -> None:
        while True:
            info = AgentInfo(
                agent_id=self.agent_id,
                capacity=self.capacity,
                active=len(self.rooms),
                ready=self.ready and not self.draining,
                draining=self.draining,
                seen=time.time(),
            )
            with contextlib.suppress(VoxfleetError, OSError):
                await self._registry.heartbeat(info)
            await asyncio.sleep(self._registry.heartbeat_interval)

    async def _reap_loop(self) -> None:
        """Re-queue rooms whose agent died (lease lapsed) as resumes."""
        while True:
            await asyncio.sleep(REAP_INTERVAL)
            try:
                for room_id, profile in await self._directory.orphans():
                    if room_id in self.rooms or not await self._directory.mark_requeued(room_id):
                        continue
                    FAILOVERS.inc()
                    log.info("orphaned room re-queued", room=room_id, agent_id=self.agent_id)
                    await self._queue.put(
                        RoomJob(
                            room_id=room_id, profile=profile, resume=True, enqueued_at=time.time()
                        )
                    )
            except (VoxfleetError, OSError) as e:
                log.warning("orphan scan failed", agent_id=self.agent_id, error=str(e))

    # -- one room ----------------------------------------------------------------

    async def _serve(self, job: RoomJob) -> None:
        room_id = job.room_id
        try:
            lease = await self._directory.acquire(
                room_id, self.agent_id, job.profile, takeover_fence=job.handover_fence
            )
            await self._queue.done(job)
            if lease is None:
                log.info("stale room job dropped", room=room_id, agent_id=self.agent_id)
                return
            store = FencedStateStore(self._directory, lease)
            state = await self._directory.load_state(room_id) if job.resume else None
            if state is None:
                if job.resume:  # the call ended while the job waited
                    await self._directory.end_room(room_id)
                    return
                state = ConversationState(room_id=room_id, profile=job.profile)
                await store.save(state)
            await self._run_room(job, store, state)
        except Exception:
            log.exception("room failed", room=room_id, agent_id=self.agent_id)
            await BusRoomLink(self._bus, room_id).send("agent_failed")
        finally:
            self._slots.release()

    async def _run_room(self, job: RoomJob, store: FencedStateStore, state: Any) -> None:
        room_id = job.room_id
        profile = self._profiles.get(job.profile) or self._profiles.get(None)
        if profile is None:
            raise LookupError(f"profile {job.profile!r} is not configured on this agent")
        link = BusRoomLink(self._bus, room_id)
        async with await self._bus.subscribe(room_up(room_id)) as up:
            session = RoomSession(
                state, profile, self._providers, link, store, self._sink, self._endpointing
            )
            self.rooms[room_id] = _Room(session, store, job.profile)
            ACTIVE_ROOMS.set(len(self.rooms))
            keeper = self._tasks.spawn(self._keep_lease(session, store), f"lease:{room_id}")
            try:
                await link.send(
                    "attached",
                    agent_id=self.agent_id,
                    fence=store.lease.fence,
                    resume=job.resume,
                    replay_from=state.audio_seq,
                    sample_rate=self._providers.tts.sample_rate,
                    enqueued_at=job.enqueued_at,
                )
                DISPATCH_SECONDS.observe(max(0.0, time.time() - job.enqueued_at))
                if job.handover_from:
                    HANDOVERS.inc()
                log.info("room attached", room=room_id, agent_id=self.agent_id, resume=job.resume)
                if self.draining and self._hand_over_rooms:
                    self._tasks.spawn(self._hand_over(room_id), f"handover:{room_id}")
                await session.run(up)
            finally:
                await cancel_and_wait(keeper)
                self.rooms.pop(room_id, None)
                ACTIVE_ROOMS.set(len(self.rooms))
        if session.hangup_reason is not None:
            await self._directory.end_room(room_id)
            log.info("room ended", room=room_id, agent_id=self.agent_id)
        else:
            log.info("room left", room=room_id, agent_id=self.agent_id)

    async def _keep_lease(self, session: RoomSession, store: FencedStateStore) -> None:
        """Renew the lease; stop the session the moment it is not ours. When Redis
        has been unreachable for longer than the lease lives, pause the session
        (self-fencing: another agent may have the room by now) and keep trying:
        once Redis answers, either the lease is still ours (or re-asserted after
        Redis lost its data) and the session resumes, or it moved and we leave."""
        ttl = self._directory.lease_ttl
        last_ok = time.monotonic()
        room = store.lease.room_id
        while True:
            await asyncio.sleep(ttl / 3)
            try:
                if not await self._directory.renew(store.lease):
                    log.info("lease taken over", room=room, agent_id=self.agent_id)
                    session.stop()
                    return
                last_ok = time.monotonic()
                if session.paused:
                    log.info("lease confirmed, room resumed", room=room, agent_id=self.agent_id)
                    session.paused = False
            except (VoxfleetError, OSError) as e:
                if time.monotonic() - last_ok > ttl * 0.9 and not session.paused:
                    log.warning("lease unconfirmed, room paused", room=room, error=str(e))
                    session.paused = True

    # -- drain ---------------------------------------------------------------------

    async def drain(self, timeout: float, hand_over: bool = True) -> None:
        """Stop claiming; hand every room over (or let it finish) within ``timeout``.
        Without other agents (``voxfleet up``) rooms are only let finish."""
        if self.draining:
            return
        self.draining = True
        self._hand_over_rooms = hand_over
        log.info("draining", agent_id=self.agent_id, rooms=len(self.rooms))
        if hand_over:
            for room_id in list(self.rooms):
                self._tasks.spawn(self._hand_over(room_id), f"handover:{room_id}")
        deadline = time.monotonic() + timeout
        while self.rooms and time.monotonic() < deadline:  # noqa: ASYNC110 - bounded poll
            await asyncio.sleep(0.05)
        log.info("drained", agent_id=self.agent_id, left=len(self.rooms))

    async def _hand_over(self, room_id: str) -> None:
        while (room := self.rooms.get(room_id)) is not None:
            session, store = room.session, room.store
            await session.freeze_when_idle()
            await session.save()
            await self._queue.put(
                RoomJob(
                    room_id=room_id,
                    profile=room.profile,
                    resume=True,
                    handover_from=self.agent_id,
                    handover_fence=store.lease.fence,
                    enqueued_at=time.time(),
                )
            )
            deadline = time.monotonic() + HANDOVER_WAIT
            while room_id in self.rooms and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
            if room_id not in self.rooms:
                return
            # Nobody took it: a fresh fence voids the offer, and we keep serving.
            lease = await self._directory.acquire(room_id, self.agent_id, room.profile)
            if lease is None:
                session.stop()
                return
            store.lease = lease
            session.unfreeze()
            log.info("handover not taken, room kept", room=room_id, agent_id=self.agent_id)
            await asyncio.sleep(HANDOVER_WAIT)
