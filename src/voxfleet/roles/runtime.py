"""The parts one voxfleet process runs, built once from Settings, and their
start-up and shutdown order (the ASGI lifespan). A process plays one or more
roles: ``voxfleet up`` plays all three on in-process backends; ``voxfleet
landing|agent|monitor`` play one each on Redis and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncEngine

from voxfleet.aio import TaskSet
from voxfleet.domain.calls import EndReason
from voxfleet.domain.profiles import Profiles, load_profiles
from voxfleet.errors import ConfigError
from voxfleet.observability.logging import get_logger
from voxfleet.observability.metrics import DRAINS
from voxfleet.observability.tracing import start_tracing, stop_tracing
from voxfleet.pipeline.endpointing import EndpointConfig
from voxfleet.providers.base import Providers
from voxfleet.providers.registry import build_providers
from voxfleet.roles.accounts import Accounts
from voxfleet.roles.admission import CallAdmission
from voxfleet.roles.agent import AgentConfig, AgentWorker
from voxfleet.roles.agent_control import agent_control, obey_drain_requests
from voxfleet.roles.backends import Backends, build_backends
from voxfleet.roles.live_hub import LiveHub
from voxfleet.roles.live_snapshot import RoomDetails, SnapshotReader
from voxfleet.roles.login_limit import LoginLimiter
from voxfleet.roles.pod_cost import PodDeletionCost
from voxfleet.roles.sessions import SessionStore, build_sessions
from voxfleet.roles.sink import StoreTurnSink
from voxfleet.settings import Settings
from voxfleet.store import CallStore, create_engine, migrate, session_factory
from voxfleet.store.history import CallHistory
from voxfleet.store.users import UserStore
from voxfleet.transport.edge import EdgeLimits, MediaEdge
from voxfleet.transport.edge_link import Dispatch
from voxfleet.transport.entry import SocketEntry
from voxfleet.transport.livekit.landing import LiveKitLanding, build_livekit_landing
from voxfleet.transport.tokens import MediaTokens, ReadTokens, ResumeTokens

log = get_logger(__name__)
ProviderFactory = Callable[[Settings], Providers]
STALE_SWEEP_SECONDS = 30.0


class Role(StrEnum):
    LANDING = "landing"
    AGENT = "agent"
    MONITOR = "monitor"


@dataclass(slots=True)
class LandingParts:
    """What the landing role runs: the media edge, its tokens, call admission."""

    edge: MediaEdge
    tokens: MediaTokens
    read_tokens: ReadTokens
    admission: CallAdmission
    livekit: LiveKitLanding | None = None  # transport=livekit: its rooms and webhooks


class Runtime:
    """Builds only what its roles need: the store for the landing and agents,
    the landing's edge and admission, the agent's worker and models (at
    start-up, since loading them takes seconds); the monitor's accounts (in the
    store) and sign-in sessions (the landing reads those too)."""

    def __init__(
        self,
        settings: Settings,
        roles: frozenset[Role] = frozenset(Role),
        providers: ProviderFactory = build_providers,
        endpointing: EndpointConfig | None = None,
        migrate_on_start: bool = True,
    ) -> None:
        self.settings = settings
        self.roles = roles
        self.profiles: Profiles = load_profiles(settings.profiles_file, settings.default_profile)
        self.backends: Backends = build_backends(settings)
        self._provider_factory = providers
        self._endpointing = endpointing
        self._migrate = migrate_on_start
        self._tasks = TaskSet("runtime")
        self._tracing = False  # this runtime started the trace exporter
        self.engine: AsyncEngine | None = None
        self.store: CallStore | None = None
        self.sink: StoreTurnSink | None = None
        self.accounts: Accounts | None = None
        self.login: LoginLimiter | None = None
        self.sessions: SessionStore | None = None
        if roles & {Role.LANDING, Role.AGENT, Role.MONITOR}:
            self.engine = create_engine(settings.sqlalchemy_url)
            self.store = CallStore(session_factory(self.engine))
        if roles & {Role.LANDING, Role.MONITOR}:
            self.sessions = build_sessions(
                settings.session_idle_seconds, settings.session_max_seconds, self.backends.redis
            )
        self.live_hub: LiveHub | None = None  # the live view's one feed on this replica
        if Role.MONITOR in roles and self.engine is not None:
            self.accounts = Accounts(UserStore(session_factory(self.engine)))
            self.login = LoginLimiter(settings)
            details = RoomDetails(self.store, CallHistory(session_factory(self.engine)))
            reader = SnapshotReader(self.backends, settings, details)
            self.live_hub = LiveHub(reader, self.backends.bus)
        self.landing = self._landing_parts() if Role.LANDING in roles else None
        self.providers: Providers | None = None
        self.worker: AgentWorker | None = None
        self.started = False
        self.stopping = False
        self.drain_started = asyncio.Event()  # the live view closes its sockets on it

    def _landing_parts(self) -> LandingParts:
        s, b = self.settings, self.backends
        secret = s.secret_key.get_secret_value()
        tokens = MediaTokens(secret, s.token_ttl_seconds)
        # A resume token lasts as long as the call may, plus the window after a drop.
        resume = ResumeTokens(secret, int(s.max_call_seconds + s.resume_window_seconds))
        if self.store is None:
            raise ConfigError("the landing role needs a store")
        limits = EdgeLimits(
            attach_timeout=s.queue_timeout_seconds,
            max_call_seconds=s.max_call_seconds,
            resume_window=s.resume_window_seconds,
        )
        history = CallHistory(session_factory(self.engine)) if self.engine else None
        entry = SocketEntry(self.store, b.directory, tokens, resume, history)
        dispatch = Dispatch(b.bus, b.queue, b.directory)
        return LandingParts(
            edge=MediaEdge(dispatch, self.store, entry, resume, limits),
            tokens=tokens,
            read_tokens=ReadTokens(secret, s.read_token_ttl_seconds),
            admission=CallAdmission(s, b.queue),
            livekit=(
                build_livekit_landing(s, dispatch, self.store, b.redis)
                if s.transport == "livekit"
                else None
            ),
        )

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
    async def lifespan(self, _app: object = None) -> AsyncIterator[None]:
        if self._migrate and self.engine is not None:
            await migrate(self.engine)
        if self.accounts is not None:
            await self.accounts.ensure_first_admin(self.settings)
        if Role.AGENT in self.roles and self.store is not None:
            await self._start_agent(self.store)
        if self.landing is not None and self.store is not None:
            self._tasks.spawn(self._sweep_stale_calls(self.store), "stale-calls")
        self.started = True
        try:
            yield
        finally:
            await self.drain()
            await self._tasks.cancel_all()
            if self.live_hub is not None:
                await self.live_hub.close()
            if self.sink is not None:
                await self.sink.close()
            if self.providers is not None:
                await self.providers.close()
            if self._tracing:
                await asyncio.to_thread(stop_tracing)  # sends the last turns
            if self.landing is not None:
                await self.landing.admission.close()
            if self.login is not None:
                await self.login.close()
            await self.backends.close()
            if self.engine is not None:
                await self.engine.dispose()

    async def _start_agent(self, store: CallStore) -> None:
        started = time.perf_counter()
        providers = await asyncio.to_thread(self._provider_factory, self.settings)
        await providers.warm_up()
        await providers.prepare_phrases(self.profiles.phrases())
        log.info("models warm", seconds=round(time.perf_counter() - started, 2))
        self._tracing = start_tracing()
        self.providers = providers
        history = CallHistory(session_factory(self.engine)) if self.engine else None
        self.sink = StoreTurnSink(store, history=history, live=self.backends.events)
        self.sink.start()
        self.worker = AgentWorker(
            providers,
            self.profiles,
            self.backends,
            self.sink,
            store,
            AgentConfig(
                capacity=self.settings.agent_capacity,
                max_load=self.settings.agent_max_model_load,
                agent_id=self.settings.agent_id,
                endpointing=self._endpointing,
                caller_gone_after=self.settings.caller_gone_seconds,
                livekit=self.settings if self.settings.transport == "livekit" else None,
            ),
        )
        self._tasks.spawn(self.worker.run(), "agent")
        # Subscribed before the agent is ready: no drain request is missed.
        control = await self.backends.bus.subscribe(agent_control(self.worker.agent_id))
        self._tasks.spawn(
            obey_drain_requests(control, self.worker.agent_id, self._drain_agent), "drain-requests"
        )
        s = self.settings
        if s.pod_name and s.pod_namespace:
            worker = self.worker
            cost = PodDeletionCost(s.pod_name, s.pod_namespace)
            self._tasks.spawn(cost.run(lambda: len(worker.rooms)), "pod-deletion-cost")

    async def drain(self) -> None:
        """Readiness off; hand rooms over (or let them finish) within the drain
        timeout. Idempotent: SIGTERM calls it, and so does shutdown."""
        if self.stopping:
            return
        self.stopping = True
        self.drain_started.set()
        if self.landing is not None:
            await self.landing.edge.drain(self.settings.drain_timeout_seconds)
        if self.worker is not None and self.worker.rooms:
            DRAINS.inc()
            await self.worker.drain(
                self.settings.drain_timeout_seconds, hand_over_rooms=self.backends.distributed
            )
        elif self.worker is not None:
            self.worker.draining = True

    async def _drain_agent(self) -> None:
        """An operator asked (roles/agent_control.py): the SIGTERM drain of the
        agent alone; the process stays up, not ready."""
        if self.worker is not None and not self.worker.draining:
            DRAINS.inc()
            await self.worker.drain(
                self.settings.drain_timeout_seconds, hand_over_rooms=self.backends.distributed
            )

    def _join_ttl(self) -> float:
        """How long a new call's caller may take to join: its media token's TTL,
        or its LiveKit join token's."""
        s = self.settings
        return s.livekit_token_ttl_seconds if s.transport == "livekit" else s.token_ttl_seconds

    async def _sweep_stale_calls(self, store: CallStore) -> None:
        """Calls whose media (or LiveKit join) token expired unused are ended as
        never_connected."""
        while True:
            now = time.time()
            try:
                count = await store.end_stale_calls(
                    EndReason.NEVER_CONNECTED, now, older_than=now - self._join_ttl() - 5
                )
                if count:
                    log.info("unused calls ended", count=count)
            except Exception:
                log.exception("stale call sweep failed")
            await asyncio.sleep(STALE_SWEEP_SECONDS)
