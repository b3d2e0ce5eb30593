"""Running a role's app under uvicorn, with drain on SIGTERM.

The first SIGTERM (or Ctrl-C) turns readiness off and drains: an agent hands
its rooms over or lets them finish, within ``drain_timeout_seconds``; only then
does the server stop. A second Ctrl-C forces the exit."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from types import FrameType

import uvicorn

from voxfleet.observability.logging import get_logger
from voxfleet.roles.landing import create_app
from voxfleet.roles.runtime import Role, Runtime
from voxfleet.settings import Settings
from voxfleet.transport.wsprotocol import EdgeWebSocketProtocol

log = get_logger(__name__)


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, runtime: Runtime) -> None:
        super().__init__(config)
        self._runtime = runtime
        self._drain_task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: list[object] | None = None) -> None:  # type: ignore[override]
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)  # type: ignore[arg-type]

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._drain_task is not None or self._loop is None:
            super().handle_exit(sig, frame)  # second signal: stop now
            return
        self._captured_signals.append(sig)
        log.info("signal received, draining", signal=signal.Signals(sig).name)
        self._loop.call_soon_threadsafe(self._begin_drain)

    def _begin_drain(self) -> None:
        self._drain_task = asyncio.create_task(self._drain_then_exit(), name="drain")

    async def _drain_then_exit(self) -> None:
        try:
            await self._runtime.drain()
        finally:
            self.should_exit = True


def run_roles(
    settings: Settings, roles: frozenset[Role], migrate_on_start: bool, banner: bool = False
) -> int:
    runtime = Runtime(settings, roles, migrate_on_start=migrate_on_start)
    config = uvicorn.Config(
        create_app(runtime),
        host=settings.host,
        port=settings.port,
        log_config=None,
        ws=EdgeWebSocketProtocol,
        ws_max_size=1 << 20,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    server = DrainingServer(config, runtime)

    async def main() -> None:
        task = asyncio.create_task(server.serve(), name="uvicorn")
        while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn exposes a flag
            await asyncio.sleep(0.05)
        if server.started:
            host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host  # noqa: S104
            names = ", ".join(sorted(r.value for r in roles))
            log.info("serving", roles=names, url=f"http://{host}:{settings.port}/")
            if banner:
                print(f"\n  voxfleet is ready: open http://{host}:{settings.port}/\n", flush=True)
        await task

    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(main())
    return 0 if server.started else 1


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed (it is, with uvicorn[standard]): the media edge
    relays thousands of frames a second, and uvloop's sockets cost less per frame."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop
