"""Real servers for tests: voxfleet's app on a real socket, in-process (fast,
scripted providers) or as a `voxfleet up` subprocess (real models)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from voxfleet.pipeline.endpointing import EndpointConfig
from voxfleet.providers.registry import build_providers
from voxfleet.roles.app import create_app
from voxfleet.roles.runtime import ProviderFactory, Role, Runtime
from voxfleet.serve import server_config
from voxfleet.settings import Settings

ADMIN_KEY = "test-admin-key-0123456789abcdef"  # the admin API key of the test servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def app_server(
    tmp_path: Path,
    roles: frozenset[Role] = frozenset(Role),
    provider_factory: ProviderFactory = build_providers,
    **overrides: Any,
) -> AsyncIterator[tuple[str, Runtime]]:
    """Serve the app of ``roles`` (default: all, the monitor's routes too) with
    scripted providers (or those ``provider_factory`` builds; the
    ``providers`` setting stays an override like any other) on a free port; yields
    (base URL, runtime). Its admin API key is ADMIN_KEY unless ``admin_api_key`` is given."""
    port = free_port()
    settings = Settings(
        port=port,
        data_dir=tmp_path,
        providers="scripted",
        _env_file=None,  # type: ignore[call-arg]
        # A dropped caller may resume for a second: tests that drop one wait less.
        **{"admin_api_key": ADMIN_KEY, "resume_window_seconds": 1.0, **overrides},
    )
    runtime = Runtime(settings, roles, provider_factory, endpointing=EndpointConfig(end_ms=320))
    config = server_config(create_app(runtime), settings, "on")
    config.host, config.port = "127.0.0.1", port
    async with serving(config):
        yield f"http://127.0.0.1:{port}", runtime


@contextlib.asynccontextmanager
async def serving(config: uvicorn.Config, timeout: float = 30.0) -> AsyncIterator[None]:
    """Run a uvicorn server in this event loop while the block runs."""
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(), name="test-uvicorn")
    try:
        async with asyncio.timeout(timeout):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.02)
        yield
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout)


@contextlib.contextmanager
def up_process(tmp_path: Path, **env: str) -> Iterator[str]:
    """Run `voxfleet up` with the real local models as a subprocess; yields its URL."""
    with up_process_handle(tmp_path, **env) as (base, _proc):
        yield base


@contextlib.contextmanager
def up_process_handle(tmp_path: Path, **env: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`voxfleet up` as a subprocess (its log in tmp_path); yields (URL, process).
    Its admin listener takes a free port unless VOXFLEET_ADMIN_PORT is given."""
    port = free_port()
    log = (tmp_path / "voxfleet-up.log").open("w")
    defaults = {"VOXFLEET_DATA_DIR": str(tmp_path), "VOXFLEET_ADMIN_PORT": str(free_port())}
    proc = subprocess.Popen(
        [sys.executable, "-m", "voxfleet", "up", "--port", str(port)],
        env={**os.environ, **defaults, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"voxfleet up exited with {proc.returncode}: "
                    + (tmp_path / "voxfleet-up.log").read_text()[-3000:]
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError("voxfleet up did not become ready in 180 s")
            time.sleep(0.2)
        yield base, proc
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
