"""The parts one voxfleet process runs, built once from Settings, and their
start-up and shutdown order (the ASGI lifespan). A process plays one or more
roles: ``voxfleet up`` plays all three on in-process backends; ``voxfleet
landing|agent|monitor`` play one each on Redis and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from enum import StrEnum
from typing import Any

from voxfleet.aio import TaskSet
from voxfleet.dispatch.scaling import ScalingSignal, desired_agents
from voxfleet.domain.calls import EndReason
from voxfleet.domain.profiles import Profiles, load_profiles
from voxfleet.observability.logging import get_logger
from voxfleet.observability.metrics import (
    ACTIVE_ROOMS_TOTAL,
    DESIRED_AGENTS,
    DRAINS,
    LIVE_AGENTS,
    QUEUE_DEPTH,
)
from voxfleet.pipeline.endpointing import EndpointConfig
from voxfleet.providers.base import Providers
from voxfleet.roles.admission import CallAdmission
from voxfleet.roles.agent import AgentConfig, AgentWorker
from voxfleet.roles.backends import Backends, build_backends
from voxfleet.roles.sink import StoreTurnSink
from voxfleet.settings import Settings
from voxfleet.store import CallStore, create_engine, migrate, session_factory
from voxfleet.transport.edge import EdgeLimits, MediaEdge
from voxfleet.transport.tokens import MediaTokens, ReadTokens

log = get_logger(__name__)
ProviderFactory = Callable[[Settings], Providers]
STALE_SWEEP_SECONDS = 30.0


class Role(StrEnum):
    LANDING = "landing"
    AGENT = "agent"
    MONITOR = "monitor"


def default_providers(settings: Settings) -> Providers:
    if settings.providers == "scripted":
        from voxfleet.providers.scripted import scripted_providers

        return scripted_providers()
    from voxfleet.providers.local import load_local_providers

    return load_local_providers(settings)


class Runtime:
    def __init__(
        self,
        settings: Settings,
        roles: frozenset[Role] = frozenset(Role),
        providers: ProviderFactory = default_providers,
        endpointing: EndpointConfig | None = None,
        migrate_on_start: bool = True,
    ) -> None:
        self.settings = settings
        self.roles = roles
        self.profiles: Profiles = load_profiles(settings.profiles_file, settings.default_profile)
        self.tokens = MediaTokens(
            settings.secret_key.get_secret_value(), settings.token_ttl_seconds
        )
        self.read_tokens = ReadTokens(
            settings.secret_key.get_secret_value(), settings.read_token_ttl_seconds
        )
        self.backends: Backends = build_backends(settings)
        self.admission = CallAdmission(settings, self.backends.queue)
        self._provider_factory = providers
        self._endpointing = endpointing
        self._migrate = migrate_on_start
        self._tasks = TaskSet("runtime")
        self.engine = create_engine(settings.sqlalchemy_url)
        self.store = CallStore(session_factory(self.engine))
        self.sink = StoreTurnSink(self.store)
        self.providers: Providers | None = None
        self.worker: AgentWorker | None = None
        self.edge = MediaEdge(
            self.backends.bus,
            self.backends.queue,
            self.backends.directory,
            self.store,
            self.tokens,
            EdgeLimits(
                attach_timeout=settings.queue_timeout_seconds,
                max_call_seconds=settings.max_call_seconds,
            ),
        )
        self.started = False
        self.stopping = False

    # -- health -----------------------------------------------------------------

    async def readiness(self) -> tuple[bool, str]:
        """(ready, why not): an agent is ready once its models are warm and
        while it is not draining; every role needs its backends."""
        if not self.started:
            return False, "starting"
        if self.stopping:
            return False, "draining"
        if self.worker is not None and (self.worker.draining or not self.worker.ready):
            return False, "draining" if self.worker.draining else "agent not running"
        if not await self.backends.ping():
            return False, "redis unreachable"
        return True, ""

    # -- lifecycle --------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Any = None) -> AsyncIterator[None]:
        if self._migrate:
            await migrate(self.engine)
        self.sink.start()
        if Role.AGENT in self.roles:
            await self._start_agent()
        if Role.LANDING in self.roles:
            self._tasks.spawn(self._sweep_stale_calls(), "stale-calls")
        self.started = True
        try:
            yield
        finally:
            await self.drain()
            await self._tasks.cancel_all()
            await self.sink.close()
            await self.admission.close()
            await self.backends.close()
            await self.engine.dispose()

    async def _start_agent(self) -> None:
        started = time.perf_counter()
        providers = await asyncio.to_thread(self._provider_factory, self.settings)
        await providers.warm_up()
        log.info("models warm", seconds=round(time.perf_counter() - started, 2))
        self.providers = providers
        b = self.backends
        self.worker = AgentWorker(
            providers,
            self.profiles,
            b,
            self.sink,
            self.store,
            AgentConfig(
                capacity=self.settings.agent_capacity,
                agent_id=self.settings.agent_id,
                endpointing=self._endpointing,
                caller_gone_after=self.settings.caller_gone_seconds,
            ),
        )
        self._tasks.spawn(self.worker.run(), "agent")

    async def drain(self) -> None:
        """Readiness off; hand rooms over (or let them finish) within the drain
        timeout. Idempotent: SIGTERM calls it, and so does shutdown."""
        if self.stopping:
            return
        self.stopping = True
        if self.worker is not None and self.worker.rooms:
            DRAINS.inc()
            await self.worker.drain(
                self.settings.drain_timeout_seconds, hand_over_rooms=self.backends.distributed
            )
        elif self.worker is not None:
            self.worker.draining = True

    async def scaling_signal(self) -> ScalingSignal:
        """The monitor's view of demand and supply; also sets the gauges."""
        b, s = self.backends, self.settings
        agents = await b.registry.agents()
        rooms = await b.directory.rooms()
        queued = await b.queue.depth()
        live = [a for a in agents if not a.draining]
        capacity = max((a.capacity for a in live), default=s.agent_capacity)
        signal = ScalingSignal(
            active_rooms=len(rooms),
            queued_rooms=queued,
            live_agents=len(agents),
            ready_agents=sum(1 for a in agents if a.ready),
            draining_agents=sum(1 for a in agents if a.draining),
            capacity_per_agent=capacity,
            free_capacity=sum(max(0, a.capacity - a.active) for a in live if a.ready),
            warm_buffer=s.scaling_warm_buffer,
            min_agents=s.scaling_min_agents,
            max_agents=s.scaling_max_agents,
            desired_agents=desired_agents(
                len(rooms),
                queued,
                capacity,
                s.scaling_warm_buffer,
                s.scaling_min_agents,
                s.scaling_max_agents,
            ),
        )
        DESIRED_AGENTS.set(signal.desired_agents)
        LIVE_AGENTS.set(signal.live_agents)
        ACTIVE_ROOMS_TOTAL.set(signal.active_rooms)
        QUEUE_DEPTH.set(queued)
        return signal

    async def _sweep_stale_calls(self) -> None:
        """Calls whose media token expired unused are ended as never_connected."""
        while True:
            now = time.time()
            try:
                count = await self.store.end_stale_calls(
                    EndReason.NEVER_CONNECTED, now, older_than=now - self.tokens.ttl - 5
                )
                if count:
                    log.info("unused calls ended", count=count)
            except Exception:
                log.exception("stale call sweep failed")
            await asyncio.sleep(STALE_SWEEP_SECONDS)
