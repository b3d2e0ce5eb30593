"""The parts one voxfleet process shares, built once from Settings, and their
start-up and shutdown order (the ASGI lifespan)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from voxfleet.aio import TaskSet
from voxfleet.bus.memory import InProcessBus
from voxfleet.dispatch.memory import InProcessRoomQueue, InProcessStateStore
from voxfleet.domain.calls import EndReason
from voxfleet.domain.profiles import Profiles, load_profiles
from voxfleet.observability.logging import get_logger
from voxfleet.pipeline.endpointing import EndpointConfig
from voxfleet.providers.base import Providers
from voxfleet.roles.agent import AgentWorker
from voxfleet.roles.sink import StoreTurnSink
from voxfleet.settings import Settings
from voxfleet.store import CallStore, create_engine, migrate, session_factory
from voxfleet.transport.edge import EdgeLimits, MediaEdge
from voxfleet.transport.tokens import MediaTokens

log = get_logger(__name__)
ProviderFactory = Callable[[Settings], Providers]
STALE_SWEEP_SECONDS = 30.0


def default_providers(settings: Settings) -> Providers:
    if settings.providers == "scripted":
        from voxfleet.providers.scripted import scripted_providers

        return scripted_providers()
    from voxfleet.providers.local import load_local_providers

    return load_local_providers(settings)


class Runtime:
    """Everything ``voxfleet up`` runs in one process: store, bus, dispatch,
    media edge and an agent worker."""

    def __init__(
        self,
        settings: Settings,
        providers: ProviderFactory = default_providers,
        endpointing: EndpointConfig | None = None,
    ) -> None:
        self.settings = settings
        self.profiles: Profiles = load_profiles(settings.profiles_file, settings.default_profile)
        self.tokens = MediaTokens(
            settings.secret_key.get_secret_value(), settings.token_ttl_seconds
        )
        self.bus = InProcessBus()
        self.queue = InProcessRoomQueue()
        self.states = InProcessStateStore()
        self._provider_factory = providers
        self._endpointing = endpointing
        self._tasks = TaskSet("runtime")
        self.ready = False
        self.not_ready_reason = "starting"
        self.engine = create_engine(settings.sqlalchemy_url)
        self.store = CallStore(session_factory(self.engine))
        self.sink = StoreTurnSink(self.store)
        self.providers: Providers | None = None
        self.worker: AgentWorker | None = None
        self._edge: MediaEdge | None = None

    @property
    def edge(self) -> MediaEdge:
        if self._edge is None:
            raise RuntimeError("the media edge starts with the app's lifespan")
        return self._edge

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Any = None) -> AsyncIterator[None]:
        await migrate(self.engine)
        self.sink.start()
        self.not_ready_reason = "loading models"
        started = time.perf_counter()
        providers = await asyncio.to_thread(self._provider_factory, self.settings)
        await providers.warm_up()
        log.info("models warm", seconds=round(time.perf_counter() - started, 2))
        self.providers = providers
        self._edge = MediaEdge(
            self.bus,
            self.queue,
            self.store,
            self.tokens,
            EdgeLimits(
                sample_rate=providers.tts.sample_rate,
                max_call_seconds=self.settings.max_call_seconds,
            ),
        )
        self.worker = AgentWorker(
            providers,
            self.profiles,
            self.bus,
            self.queue,
            self.states,
            self.sink,
            capacity=self.settings.agent_capacity,
            endpointing=self._endpointing,
        )
        self._tasks.spawn(self.worker.run(), "agent")
        self._tasks.spawn(self._sweep_stale_calls(), "stale-calls")
        self.ready = True
        self.not_ready_reason = ""
        try:
            yield
        finally:
            self.ready = False
            self.not_ready_reason = "shutting down"
            await self._tasks.cancel_all()
            await self.sink.close()
            await self.bus.close()
            await self.engine.dispose()

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
