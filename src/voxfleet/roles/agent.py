"""The agent worker: claims rooms from the queue while it has capacity and runs
one RoomSession per room. The room's state is loaded from (and saved to) the
RoomStateStore, so a room can come to this worker from another one."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from voxfleet.aio import TaskSet
from voxfleet.bus.base import Bus, room_down, room_up
from voxfleet.bus.messages import encode_audio, encode_control
from voxfleet.dispatch.base import RoomJob, RoomQueue, RoomStateStore
from voxfleet.domain.conversation import ConversationState
from voxfleet.domain.profiles import Profiles
from voxfleet.observability.logging import get_logger
from voxfleet.observability.metrics import ACTIVE_ROOMS, DISPATCH_SECONDS
from voxfleet.pipeline.endpointing import EndpointConfig
from voxfleet.pipeline.session import RoomLink, RoomSession, TurnSink
from voxfleet.providers.base import Providers

log = get_logger(__name__)


class BusRoomLink(RoomLink):
    def __init__(self, bus: Bus, room_id: str) -> None:
        self._bus = bus
        self._topic = room_down(room_id)

    async def send_audio(self, pcm: bytes) -> None:
        await self._bus.publish(self._topic, encode_audio(pcm))

    async def send(self, type_: str, **body: Any) -> None:
        await self._bus.publish(self._topic, encode_control(type_, **body))


class AgentWorker:
    def __init__(
        self,
        providers: Providers,
        profiles: Profiles,
        bus: Bus,
        queue: RoomQueue,
        states: RoomStateStore,
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
        self._states = states
        self._sink = sink
        self.capacity = capacity
        self._endpointing = endpointing
        self._rooms = TaskSet(self.agent_id)
        self._slots = asyncio.Semaphore(capacity)
        self.active: set[str] = set()

    async def run(self) -> None:
        """Claim and serve rooms until cancelled."""
        log.info("agent ready", agent_id=self.agent_id, capacity=self.capacity)
        try:
            while True:
                await self._slots.acquire()
                job = await self._queue.take(timeout=1.0)
                if job is None:
                    self._slots.release()
                    continue
                self._rooms.spawn(self._serve(job), job.room_id)
        finally:
            await self._rooms.cancel_all()

    async def _serve(self, job: RoomJob) -> None:
        room_id = job.room_id
        link = BusRoomLink(self._bus, room_id)
        self.active.add(room_id)
        ACTIVE_ROOMS.set(len(self.active))
        try:
            profile = self._profiles.get(job.profile) or self._profiles.get(None)
            if profile is None:  # the landing validated it; a config change raced us
                raise LookupError(f"profile {job.profile!r} is not configured on this agent")
            state = await self._states.load(room_id) if job.resume else None
            if state is None:
                state = ConversationState(room_id=room_id, profile=profile.name)
                await self._states.save(state)
            async with await self._bus.subscribe(room_up(room_id)) as up:
                await link.send("attached", agent_id=self.agent_id)
                DISPATCH_SECONDS.observe(max(0.0, time.time() - job.enqueued_at))
                log.info("room attached", room=room_id, agent_id=self.agent_id, resume=job.resume)
                session = RoomSession(
                    state,
                    profile,
                    self._providers,
                    link,
                    self._states,
                    self._sink,
                    self._endpointing,
                )
                await session.run(up)
            if session.hangup_reason is not None:
                await self._states.delete(room_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("room failed", room=room_id, agent_id=self.agent_id)
            await link.send("agent_failed")
        finally:
            self.active.discard(room_id)
            ACTIVE_ROOMS.set(len(self.active))
            self._slots.release()
            log.info("room released", room=room_id, agent_id=self.agent_id)
