"""Running a process's apps under uvicorn, with drain on SIGTERM.

The first SIGTERM (or Ctrl-C) turns readiness off and drains: an agent hands
its rooms over or lets them finish, within ``drain_timeout_seconds``; only then
does the server stop. A second Ctrl-C forces the exit.

`voxfleet up` serves two apps on one event loop: the public one on
``host:port`` and the admin one (the monitor routes) on
``admin_host:admin_port``; the admin server stops after the public one."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Literal

import uvicorn
from fastapi import FastAPI

from voxfleet.aio import TaskSet
from voxfleet.errors import ConfigError
from voxfleet.observability.logging import get_logger
from voxfleet.observability.pauses import GcPauses, freeze_startup_objects, watch_loop_lag
from voxfleet.roles.app import create_app
from voxfleet.roles.runtime import Role, Runtime
from voxfleet.settings import Settings
from voxfleet.transport.wsprotocol import EdgeWebSocketProtocol

log = get_logger(__name__)


class CompanionServer(uvicorn.Server):
    """A server that lives inside another on the same loop (the admin
    listener): signals stay with the main server, which starts it once the
    runtime is up and stops it before the runtime shuts down."""

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket]) -> None:
        super().__init__(config)
        self.sockets = sockets

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class DrainingServer(uvicorn.Server):
    def __init__(
        self,
        config: uvicorn.Config,
        runtime: Runtime,
        companions: Sequence[CompanionServer] = (),
    ) -> None:
        super().__init__(config)
        self._runtime = runtime
        self._companions = companions
        self._tasks = TaskSet("serve")
        self._companion_tasks: list[asyncio.Task[None]] = []
        self._drain_task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)  # the runtime is up once this returns
        for companion in self._companions:
            task = self._tasks.spawn(companion.serve(companion.sockets), "uvicorn-admin")
            self._companion_tasks.append(task)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for companion in self._companions:
            companion.should_exit = True
        await asyncio.gather(*self._companion_tasks, return_exceptions=True)
        await super().shutdown(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._drain_task is not None or self._loop is None:
            super().handle_exit(sig, frame)  # second signal: stop now
            return
        self._captured_signals.append(sig)
        log.info("signal received, draining", signal=signal.Signals(sig).name)
        self._loop.call_soon_threadsafe(self._begin_drain)

    def _begin_drain(self) -> None:
        self._drain_task = self._tasks.spawn(self._drain_then_exit(), "drain")

    async def _drain_then_exit(self) -> None:
        try:
            await self._runtime.drain()
        finally:
            self.should_exit = True


def listen(host: str, port: int, setting: str) -> socket.socket:
    """A listening socket, bound before anything starts, so a busy port is a
    clear configuration error rather than a half-started process."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as e:
        raise ConfigError(f"{setting}: cannot listen on {host}:{port}: {e.strerror}") from e


def server_config(
    app: FastAPI, settings: Settings, lifespan: Literal["on", "off"]
) -> uvicorn.Config:
    """How every voxfleet listener serves ``app``. WebSockets go uncompressed:
    they carry 20 ms frames of PCM, which permessage-deflate barely shrinks
    while costing both ends CPU on every frame (6% of an agent's event loop
    with four calls talking, docs/performance.md)."""
    return uvicorn.Config(
        app,
        log_config=None,
        ws=EdgeWebSocketProtocol,
        ws_max_size=1 << 20,
        ws_per_message_deflate=False,
        lifespan=lifespan,
        timeout_graceful_shutdown=5,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )


def _url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
    return f"http://{shown}:{port}"


def run_roles(
    settings: Settings,
    roles: frozenset[Role],
    migrate_on_start: bool,
    banner: bool = False,
    admin_listener: bool = False,
    admin_key_file: Path | None = None,
) -> int:
    """Serve ``roles``; with ``admin_listener`` the monitor routes go on the
    admin address instead of the public one."""
    public_socket = listen(settings.host, settings.port, "port")
    admin_socket: socket.socket | None = None
    if admin_listener:
        try:
            admin_socket = listen(settings.admin_host, settings.admin_port, "admin_port")
        except ConfigError:
            public_socket.close()
            raise
    runtime = Runtime(settings, roles, migrate_on_start=migrate_on_start)
    public_roles = roles - {Role.MONITOR} if admin_socket is not None else roles
    companions = []
    if admin_socket is not None:
        admin_app = create_app(runtime, frozenset({Role.MONITOR}), lifespan=False)
        companions.append(
            CompanionServer(server_config(admin_app, settings, "off"), [admin_socket])
        )
    public_app = create_app(runtime, public_roles)
    server = DrainingServer(server_config(public_app, settings, "on"), runtime, companions)

    async def main() -> None:
        tasks = TaskSet("main")
        task = tasks.spawn(server.serve([public_socket]), "uvicorn")
        tasks.spawn(watch_loop_lag(gc_pauses=gc_pauses), "loop-lag")
        while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn exposes a flag
            await asyncio.sleep(0.05)
        if server.started:
            gc_pauses.uninstall()  # this one collection is on purpose: no warning
            log.info("start-up objects frozen", objects=freeze_startup_objects())
            gc_pauses.install()
            url = _url(settings.host, settings.port)
            admin_url = _url(settings.admin_host, settings.admin_port) if companions else None
            names = ", ".join(sorted(r.value for r in roles))
            log.info("serving", roles=names, url=f"{url}/", admin_url=admin_url)
            if banner:
                _print_banner(url, admin_url, admin_key_file)
        try:
            await task
        finally:
            await tasks.cancel_all()

    with GcPauses() as gc_pauses, asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(main())
    return 0 if server.started else 1


def _print_banner(url: str, admin_url: str | None, admin_key_file: Path | None) -> None:
    print(f"\n  voxfleet is ready: open {url}/", flush=True)
    if admin_url is not None:
        where = f"is in {admin_key_file}" if admin_key_file else "is VOXFLEET_ADMIN_API_KEY"
        print(
            f"  admin API: {admin_url}/api/rooms, /api/agents, /api/scaling\n"
            f"    send `Authorization: Bearer <key>`; the key {where}\n"
            "    or sign in (POST /api/session) as a monitor user: see docs/monitor.md",
            flush=True,
        )
    print(flush=True)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed (it is, with uvicorn[standard]): the media edge
    relays thousands of frames a second, and uvloop's sockets cost less per frame."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop
