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

from voxfleet.aio import TaskSet, cancel_and_wait
from voxfleet.bus.base import Bus, room_down, room_up
from voxfleet.bus.messages import encode_control
from voxfleet.dispatch.base import (
    AgentInfo,
    AgentRegistry,
    FencedStateStore,
    RoomDirectory,
    RoomJob,
    RoomQueue,
)
from voxfleet.domain.calls import CallStatus, EndReason, Speaker
from voxfleet.domain.conversation import ConversationState, HistoryItem
from voxfleet.domain.profiles import Profiles
from voxfleet.errors import LeaseLost, RoomEnded, VoxfleetError
from voxfleet.observability.logging import get_logger
from voxfleet.observability.metrics import (
    ACTIVE_ROOMS,
    DISPATCH_SECONDS,
    FAILOVERS,
    HANDOVERS,
)
from voxfleet.pipeline.endpointing import EndpointConfig
from voxfleet.pipeline.session import CALLER_GONE_SECONDS, RoomSession, TurnSink
from voxfleet.providers.base import Providers
from voxfleet.store.repository import CallStore
from voxfleet.transport.bus_link import BusRoomLink, new_epoch

log = get_logger(__name__)
REAP_INTERVAL = 0.2
HANDOVER_WAIT = 3.0  # an offered room not taken within this stays with us
FLUSH_ON_LEAVE_S = 0.5  # what the session sent last gets this long to reach the bus


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
        calls: CallStore,
        capacity: int,
        endpointing: EndpointConfig | None = None,
        agent_id: str | None = None,
        caller_gone_after: float = CALLER_GONE_SECONDS,
    ) -> None:
        self.agent_id = agent_id or f"agent-{uuid.uuid4().hex[:8]}"
        self._providers = providers
        self._profiles = profiles
        self._bus = bus
        self._queue = queue
        self._directory = directory
        self._registry = registry
        self._sink = sink
        self._calls = calls
        self._caller_gone_after = caller_gone_after
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
                    with contextlib.suppress(VoxfleetError):  # else it is reclaimed later
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
        lease = None
        try:
            if room_id in self.rooms or not await self._call_is_live(room_id):
                await self._queue.done(job)
                log.info("job for a served or ended call dropped", room=room_id)
                return
            try:
                lease = await self._directory.acquire(
                    room_id, self.agent_id, job.profile, takeover_fence=job.handover_fence
                )
            finally:
                await self._queue.done(job)
            if lease is None:
                log.info("stale room job dropped", room=room_id, agent_id=self.agent_id)
                return
            store = FencedStateStore(self._directory, lease)
            state = await self._directory.load_state(room_id) if job.resume else None
            rebuilt = job.resume and state is None
            if state is None:
                fresh = ConversationState(room_id=room_id, profile=job.profile)
                state = (await self._state_from_store(job) if rebuilt else None) or fresh
                await store.save(state)
            await self._run_room(job, store, state, rebuilt)
        except RoomEnded:
            log.info("room ended before it was served", room=room_id)
        except LeaseLost:
            log.info("lease lost, room left", room=room_id, agent_id=self.agent_id)
        except VoxfleetError as e:
            if not e.retryable:
                raise
            # Redis or the database blinked. A job not yet done comes back to the
            # queue by itself; a room we took is released, so it is an orphan at
            # once and some agent resumes it.
            log.warning("room not served, left for a retry", room=room_id, error=e.code)
            if lease is not None:
                with contextlib.suppress(VoxfleetError):
                    await self._directory.release(lease)
        except Exception:
            log.exception("room failed", room=room_id, agent_id=self.agent_id)
            with contextlib.suppress(VoxfleetError):
                await self._bus.publish(
                    room_down(room_id), encode_control("agent_failed", epoch=new_epoch())
                )
        finally:
            self._slots.release()

    async def _call_is_live(self, call_id: str) -> bool:
        """The call may have ended while its job waited: then nobody serves it.
        The database is the record; if it cannot answer, the call is presumed
        live (the room ends itself anyway when its edge is silent)."""
        try:
            call = await self._calls.get_call(call_id)
        except VoxfleetError as e:
            if not e.retryable:
                raise
            return True
        return call is not None and call.status is not CallStatus.ENDED

    async def _state_from_store(self, job: RoomJob) -> ConversationState | None:
        """The state of a live room that Redis lost (it restarted empty, and the
        agent serving the room died before saving again): rebuilt from the
        stored turns, without a second greeting. What the caller said since the
        last stored turn is lost; the room listens from now on."""
        call = await self._calls.get_call(job.room_id)
        if call is None:
            return None
        log.warning("room state lost, rebuilt from the store", room=job.room_id)
        return ConversationState(
            room_id=job.room_id,
            profile=job.profile,
            greeted=True,
            history=[
                HistoryItem(role="user" if t.speaker is Speaker.USER else "agent", text=t.text)
                for t in call.turns
                if t.text
            ],
            next_seq=max((t.seq for t in call.turns), default=-1) + 1,
        )

    async def _run_room(
        self, job: RoomJob, store: FencedStateStore, state: ConversationState, rebuilt: bool
    ) -> None:
        room_id = job.room_id
        profile = self._profiles.get(job.profile) or self._profiles.get(None)
        if profile is None:
            raise LookupError(f"profile {job.profile!r} is not configured on this agent")
        link = BusRoomLink(self._bus, room_id)
        async with await self._bus.subscribe(room_up(room_id)) as up:
            session = RoomSession(
                state,
                profile,
                self._providers,
                link,
                store,
                self._sink,
                self._endpointing,
                caller_gone_after=self._caller_gone_after,
                listen_from_now=rebuilt,
            )
            self.rooms[room_id] = _Room(session, store, job.profile)
            ACTIVE_ROOMS.set(len(self.rooms))
            tasks = [
                self._tasks.spawn(link.outbox.run(), f"down:{room_id}"),
                self._tasks.spawn(link.outbox.ticks(), f"down-tick:{room_id}"),
                self._tasks.spawn(self._keep_lease(session, store), f"lease:{room_id}"),
            ]
            try:
                await link.send(
                    "attached",
                    agent_id=self.agent_id,
                    fence=store.lease.fence,
                    resume=job.resume,
                    replay_epoch=state.audio_epoch,
                    replay_from=None if rebuilt else state.audio_seq,
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
                await link.outbox.flush(FLUSH_ON_LEAVE_S)
            finally:
                for task in tasks:
                    await cancel_and_wait(task)
                self.rooms.pop(room_id, None)
                ACTIVE_ROOMS.set(len(self.rooms))
        if session.hangup_reason is not None:
            await self._end_room(room_id, session.hangup_reason)
        else:
            log.info("room left", room=room_id, agent_id=self.agent_id)

    async def _end_room(self, room_id: str, reason: str) -> None:
        """The call is over: forget the room. When its edge went silent, the edge
        cannot record the end, so the agent does (the first reason recorded stays)."""
        with contextlib.suppress(VoxfleetError):
            await self._directory.end_room(room_id)
        if reason == EndReason.CALLER_DISCONNECTED.value:
            with contextlib.suppress(VoxfleetError):
                await self._calls.end_call(room_id, EndReason.CALLER_DISCONNECTED, time.time())
        log.info("room ended", room=room_id, agent_id=self.agent_id, reason=reason)

    async def _keep_lease(self, session: RoomSession, store: FencedStateStore) -> None:
        """Renew the lease; stop the session the moment it is not ours, end it
        when the call is over. When Redis has been unreachable for longer than
        the lease lives, pause the session (self-fencing: another agent may have
        the room by now) and keep trying: once Redis answers, either the lease
        is still ours (or re-asserted after Redis lost it) and the session goes
        on, with its state saved again in case Redis lost that too, or it moved
        and we leave."""
        ttl = self._directory.lease_ttl
        last_ok = time.monotonic()
        failing = False
        room = store.lease.room_id
        while True:
            await asyncio.sleep(ttl / 3)
            try:
                if not await self._directory.renew(store.lease):
                    log.info("lease taken over", room=room, agent_id=self.agent_id)
                    session.stop()
                    return
                if failing:
                    failing = False
                    await store.save(session.state)
            except RoomEnded:
                session.end("room_ended")
                return
            except LeaseLost:
                session.stop()
                return
            except (VoxfleetError, OSError) as e:
                failing = True
                if time.monotonic() - last_ok > ttl * 0.9 and not session.paused:
                    log.warning("lease unconfirmed, room paused", room=room, error=str(e))
                    session.paused = True
                continue
            last_ok = time.monotonic()
            if session.paused:
                log.info("lease confirmed, room resumed", room=room, agent_id=self.agent_id)
                session.paused = False

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
        try:
            while (room := self.rooms.get(room_id)) is not None:
                await self._offer(room_id, room)
        except (LeaseLost, RoomEnded):
            return  # the lease keeper has seen it too and stopped the session

    async def _offer(self, room_id: str, room: _Room) -> None:
        """Offer the room at its next turn boundary; keep it if nobody takes it."""
        session, store = room.session, room.store
        await session.freeze_when_idle()
        try:
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
        except VoxfleetError as e:
            if not e.retryable:
                raise
            session.unfreeze()  # Redis blinked: serve on, offer again shortly
            await asyncio.sleep(HANDOVER_WAIT / 3)
            return
        deadline = time.monotonic() + HANDOVER_WAIT
        while room_id in self.rooms and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        if room_id not in self.rooms:
            return
        # Nobody took it: a fresh fence voids the offer, and we keep serving.
        while True:
            try:
                lease = await self._directory.acquire(room_id, self.agent_id, room.profile)
                break
            except VoxfleetError as e:
                if not e.retryable:
                    raise
                await asyncio.sleep(0.2)
        if lease is None:
            session.stop()
            return
        store.lease = lease
        session.unfreeze()
        log.info("handover not taken, room kept", room=room_id, agent_id=self.agent_id)
        await asyncio.sleep(HANDOVER_WAIT)
