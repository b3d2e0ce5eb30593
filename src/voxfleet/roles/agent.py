"""The agent worker: claims rooms from the queue while it has capacity and runs
one RoomSession per room, holding each room's lease (dispatch/lease.py).

Rooms move: a room comes with its state from the directory, so it can come
from another worker. Every worker re-queues rooms whose agent died
(dispatch/failover.py); on drain (SIGTERM) a worker stops claiming and hands
each room over at a turn boundary (dispatch/handover.py)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass

from voxfleet.aio import TaskSet, cancel_and_wait
from voxfleet.bus.base import room_control
from voxfleet.dispatch.base import AgentInfo, FencedStateStore, RoomJob, keep_beating
from voxfleet.dispatch.failover import reap_orphans
from voxfleet.dispatch.handover import hand_over
from voxfleet.dispatch.lease import keep_lease
from voxfleet.domain.conversation import ConversationState
from voxfleet.domain.profiles import Profiles
from voxfleet.errors import LeaseLost, RoomEnded, VoxfleetError
from voxfleet.messages.live import LiveKind, room_event
from voxfleet.messages.room import AgentFailed, Attached, encode
from voxfleet.observability.logging import get_logger
from voxfleet.observability.metrics import (
    ACTIVE_ROOMS,
    AGENT_CAPACITY,
    DISPATCH_SECONDS,
    HANDOVERS,
)
from voxfleet.observability.pauses import RECENT_LAG
from voxfleet.pipeline.endpointing import EndpointConfig
from voxfleet.pipeline.ports import StreamPosition, TurnSink
from voxfleet.pipeline.session import RoomSession
from voxfleet.providers.base import Providers
from voxfleet.providers.local.scheduler import models_load
from voxfleet.roles.backends import Backends
from voxfleet.roles.sink import call_is_live, end_room, state_from_store, takeover_event
from voxfleet.settings import Settings
from voxfleet.store.repository import CallStore
from voxfleet.transport.bus_link import CALLER_GONE_SECONDS, new_epoch
from voxfleet.transport.links import room_link

log = get_logger(__name__)


@dataclass(slots=True)
class _Room:
    session: RoomSession
    store: FencedStateStore
    profile: str


@dataclass(slots=True, frozen=True)
class AgentConfig:
    capacity: int
    max_load: float = 1.0  # see settings.agent_max_model_load
    agent_id: str | None = None
    endpointing: EndpointConfig | None = None
    caller_gone_after: float = CALLER_GONE_SECONDS
    livekit: Settings | None = None  # transport=livekit: rooms are joined with these


class AgentWorker:
    def __init__(
        self,
        providers: Providers,
        profiles: Profiles,
        backends: Backends,
        sink: TurnSink,
        calls: CallStore,
        config: AgentConfig,
    ) -> None:
        self.agent_id = config.agent_id or f"agent-{uuid.uuid4().hex[:8]}"
        self.capacity = config.capacity
        self._providers = providers
        self._profiles = profiles
        self._b = backends
        self._sink = sink
        self._calls = calls
        self._config = config
        self._tasks = TaskSet(self.agent_id)
        self._slots = asyncio.Semaphore(config.capacity)
        self._serving, self.rooms = 0, dict[str, _Room]()  # rooms claimed; rooms served
        self.draining = False
        self._hand_over_rooms = True
        self.ready = False

    # -- main loops -------------------------------------------------------------

    async def run(self) -> None:
        """Claim and serve rooms until cancelled."""
        self.ready = True
        AGENT_CAPACITY.set(self.capacity)
        log.info("agent ready", agent_id=self.agent_id, capacity=self.capacity)
        b = self._b
        loops = [
            self._tasks.spawn(self._claim_loop(), "claim"),
            self._tasks.spawn(keep_beating(b.registry, self.info), "heartbeat"),
            self._tasks.spawn(
                reap_orphans(b.directory, b.queue, self.rooms, self.agent_id), "reap"
            ),
        ]
        try:
            await asyncio.gather(*loops)
        finally:
            self.ready = False
            await self._tasks.cancel_all()
            with contextlib.suppress(VoxfleetError):
                await b.registry.remove(self.agent_id)

    async def _claim_loop(self) -> None:
        queue = self._b.queue
        while not self.draining:
            await self._slots.acquire()
            if self.draining:
                self._slots.release()
                return
            if self._serving and (models_load() or 0.0) >= self._config.max_load:
                self._slots.release()  # the models are busy: no new room for now
                await asyncio.sleep(0.25)
                continue
            try:
                job = await queue.take(self.agent_id, timeout=1.0)
            except VoxfleetError as e:
                self._slots.release()
                log.warning("queue unavailable", agent_id=self.agent_id, error=e.code)
                await asyncio.sleep(0.5)
                continue
            if job is None or self.draining:
                self._slots.release()
                if job is not None:  # drain began while we waited: give it back
                    with contextlib.suppress(VoxfleetError):  # else it is reclaimed later
                        await queue.put(job.model_copy(update={"job_id": ""}))
                        await queue.done(job)
                continue
            self._serving += 1
            self._tasks.spawn(self._serve(job), job.room_id)

    def info(self) -> AgentInfo:
        return AgentInfo(
            agent_id=self.agent_id,
            capacity=self.capacity,
            active=len(self.rooms),
            ready=self.ready and not self.draining,
            draining=self.draining,
            seen=time.time(),
            loop_lag_ms=RECENT_LAG.worst_ms(),
            model_load=models_load(),
        )

    # -- one room ----------------------------------------------------------------

    async def _serve(self, job: RoomJob) -> None:
        room_id, b = job.room_id, self._b
        lease = None
        try:
            if room_id in self.rooms or not await call_is_live(self._calls, room_id):
                await b.queue.done(job)
                log.info("job for a served or ended call dropped", room=room_id)
                return
            try:
                lease = await b.directory.acquire(
                    room_id, self.agent_id, job.profile, takeover_fence=job.handover_fence
                )
            finally:
                await b.queue.done(job)
            if lease is None:
                log.info("stale room job dropped", room=room_id, agent_id=self.agent_id)
                return
            store = FencedStateStore(b.directory, lease)
            state = await b.directory.load_state(room_id) if job.resume else None
            rebuilt = job.resume and state is None
            if state is None:
                fresh = ConversationState(room_id=room_id, profile=job.profile)
                state = (await state_from_store(self._calls, job) if rebuilt else None) or fresh
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
                    await b.directory.release(lease)
        except Exception:
            log.exception("room failed", room=room_id, agent_id=self.agent_id)
            with contextlib.suppress(VoxfleetError):
                failed = AgentFailed(epoch=new_epoch())
                await b.bus.publish(room_control(room_id), encode(failed))
        finally:
            self._serving -= 1
            self._slots.release()

    async def _run_room(
        self, job: RoomJob, store: FencedStateStore, state: ConversationState, rebuilt: bool
    ) -> None:
        room_id = job.room_id
        profile = self._profiles.get(job.profile) or self._profiles.get(None)
        if profile is None:
            raise LookupError(f"profile {job.profile!r} is not configured on this agent")
        start = None if rebuilt else StreamPosition(state.audio_epoch, state.audio_seq)
        rate = self._providers.tts.sample_rate
        link = room_link(self._b.bus, room_id, start, self.agent_id, rate, self._config, job.resume)
        async with link:
            session = RoomSession(
                state,
                profile,
                self._providers,
                link,
                link,
                store,
                self._sink,
                self._config.endpointing,
            )
            self.rooms[room_id] = _Room(session, store, job.profile)
            ACTIVE_ROOMS.set(len(self.rooms))
            keeper = self._tasks.spawn(
                keep_lease(self._b.directory, store, session), f"lease:{room_id}"
            )
            try:
                await link.attach(
                    Attached(
                        agent_id=self.agent_id,
                        fence=store.lease.fence,
                        resume=job.resume,
                        replay_epoch=state.audio_epoch,
                        replay_from=None if rebuilt else state.audio_seq,
                        sample_rate=self._providers.tts.sample_rate,
                        enqueued_at=job.enqueued_at,
                    )
                )
                DISPATCH_SECONDS.observe(max(0.0, time.time() - job.enqueued_at))
                self._b.events.emit(room_event(LiveKind.ATTACHED, room_id, self.agent_id))
                if job.handover_from:
                    HANDOVERS.inc()
                if job.resume:
                    await self._sink.event(takeover_event(job, self.agent_id, rebuilt, time.time()))
                how = {"resume": job.resume, "handover": job.handover_from is not None}
                log.info("room attached", room=room_id, agent_id=self.agent_id, **how)
                if self.draining and self._hand_over_rooms:
                    self._spawn_handover(room_id)
                await session.run()
            finally:
                await cancel_and_wait(keeper)
                self.rooms.pop(room_id, None)
                ACTIVE_ROOMS.set(len(self.rooms))
        reason = session.hangup_reason
        if reason is not None:
            await end_room(self._b.directory, self._calls, room_id, reason)
            self._b.events.emit(room_event(LiveKind.ENDED, room_id, self.agent_id, reason=reason))
        log.info("room ended" if reason else "room left", room=room_id, reason=reason)

    # -- drain ---------------------------------------------------------------------

    async def drain(self, timeout: float, hand_over_rooms: bool = True) -> None:
        """Stop claiming; hand every room over (or let it finish) within ``timeout``.
        Without other agents (``voxfleet up``) rooms are only let finish."""
        if self.draining:
            return
        self.draining = True
        self._hand_over_rooms = hand_over_rooms
        log.info("draining", agent_id=self.agent_id, rooms=len(self.rooms))
        if hand_over_rooms:
            for room_id in list(self.rooms):
                self._spawn_handover(room_id)
        deadline = time.monotonic() + timeout
        while self.rooms and time.monotonic() < deadline:  # noqa: ASYNC110 - bounded poll
            await asyncio.sleep(0.05)
        log.info("drained", agent_id=self.agent_id, left=len(self.rooms))

    def _spawn_handover(self, room_id: str) -> None:
        room = self.rooms.get(room_id)
        if room is None:
            return
        work = hand_over(
            room.session,
            room.store,
            room.profile,
            self._b.queue,
            self._b.directory,
            still_here=lambda: room_id in self.rooms,
        )
        self._tasks.spawn(work, f"handover:{room_id}")
