"""A voxfleet cluster of real processes for tests and benchmarks: its own
redis-server, a fresh PostgreSQL database, one landing, N agents and a monitor,
each a `python -m voxfleet <role>` subprocess (scripted providers unless told
otherwise). Agents are killed with real signals."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from tests.support.redis_server import RedisServer
from tests.support.server import ADMIN_KEY, free_port

PROFILES = """
[profile.default]
greeting = "Hi."
system_prompt = "Be brief."

[profile.default.generation]
max_tokens = 6
"""


@dataclass
class Proc:
    name: str
    port: int
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.popen.poll() is None


@dataclass
class Cluster:
    workdir: Path
    redis: RedisServer
    database_url: str
    env: dict[str, str]
    agents: dict[str, Proc] = field(default_factory=dict)
    landing: Proc | None = None
    monitor: Proc | None = None
    replicas: list[Proc] = field(default_factory=list)  # more monitors (start_monitor)

    def _spawn(self, name: str, args: list[str], port: int, env: dict[str, str]) -> Proc:
        log = self.workdir / f"{name}.log"
        with log.open("w") as out:
            popen = subprocess.Popen(
                [sys.executable, "-m", "voxfleet", *args, "--port", str(port)],
                env={**os.environ, **self.env, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        proc = Proc(name, port, popen, log)
        _wait_ready(proc)
        return proc

    def start_agent(self, name: str, capacity: int = 2, **env: str) -> Proc:
        proc = self._spawn(
            name,
            ["agent", "--capacity", str(capacity)],
            free_port(),
            {"VOXFLEET_AGENT_ID": name, **env},
        )
        self.agents[name] = proc
        return proc

    def start_monitor(self, name: str) -> Proc:
        """Another monitor replica on the same Redis and database."""
        proc = self._spawn(name, ["monitor"], free_port(), {})
        self.replicas.append(proc)
        return proc

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        self.agents[name].popen.send_signal(sig)

    def wait_exit(self, name: str, timeout: float) -> int:
        return self.agents[name].popen.wait(timeout)

    @property
    def base(self) -> str:
        if self.landing is None:
            raise RuntimeError("no landing")
        return self.landing.url

    def _monitor_get(self, path: str) -> Any:
        """GET a monitor route with the cluster's admin API key."""
        if self.monitor is None:
            raise RuntimeError("no monitor")
        headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
        r = httpx.get(f"{self.monitor.url}{path}", headers=headers, timeout=5)
        r.raise_for_status()
        return r.json()

    def rooms(self) -> dict[str, str | None]:
        body = self._monitor_get("/api/rooms")
        return {r["room_id"]: r["agent_id"] for r in body["rooms"]}

    def scaling(self) -> dict[str, int]:
        data: dict[str, int] = self._monitor_get("/api/scaling")
        return data

    async def agent_of(self, room_id: str, timeout: float = 10.0) -> str:
        """The agent serving ``room_id`` (waits until one does)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            agent = (await asyncio.to_thread(self.rooms)).get(room_id)
            if agent:
                return agent
            await asyncio.sleep(0.05)
        raise TimeoutError(f"no agent serves {room_id}")

    def stop(self) -> None:
        procs = [*self.agents.values(), self.landing, self.monitor, *self.replicas]
        for proc in procs:
            if proc is not None and proc.alive():
                proc.popen.send_signal(signal.SIGKILL)
        for proc in procs:
            if proc is not None:
                proc.popen.wait(10)

    def all_logs(self) -> str:
        """Every process's whole log, those of processes that exited included."""
        return "\n".join(path.read_text() for path in sorted(self.workdir.glob("*.log")))

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.log.read_text()[-4000:]}"
            for p in [*self.agents.values(), self.landing, self.monitor, *self.replicas]
            if p is not None
        )


def _wait_ready(proc: Proc, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited: {proc.log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{proc.url}/readyz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise TimeoutError(f"{proc.name} not ready in {timeout} s: {proc.log.read_text()[-3000:]}")


def _admin(server: str, sql: str) -> None:
    async def run() -> None:
        admin = await asyncpg.connect(server)
        try:
            await admin.execute(sql)
        finally:
            await admin.close()

    asyncio.run(run())


def _create_database(server: str) -> tuple[str, str]:
    name = f"vf_cluster_{secrets.token_hex(6)}"
    _admin(server, f'CREATE DATABASE "{name}"')
    url = make_url(server).set(drivername="postgresql+asyncpg", database=name)
    return url.render_as_string(hide_password=False), name


def _drop_database(server: str, name: str) -> None:
    _admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def cluster(
    workdir: Path, postgres_server: str, agents: int = 3, capacity: int = 2, **env: str
) -> Iterator[Cluster]:
    profiles = workdir / "profiles.toml"
    profiles.write_text(PROFILES)
    redis = RedisServer(free_port())
    redis.start()
    database_url, db_name = _create_database(postgres_server)
    base_env = {
        "VOXFLEET_REDIS_URL": redis.url,
        "VOXFLEET_DATABASE_URL": database_url,
        "VOXFLEET_PROVIDERS": "scripted",
        "VOXFLEET_PROFILES_FILE": str(profiles),
        "VOXFLEET_SECRET_KEY": "cluster-test-secret-key-0123456789",
        "VOXFLEET_ADMIN_API_KEY": ADMIN_KEY,
        # Tests and benchmarks open many calls from one address, some into full capacity.
        "VOXFLEET_CALL_RATE_LIMIT": "off",
        "VOXFLEET_MAX_QUEUED_ROOMS": "1000",
        "VOXFLEET_LEASE_TTL_SECONDS": "1.0",
        "VOXFLEET_DRAIN_TIMEOUT_SECONDS": "10",
        "VOXFLEET_RESUME_WINDOW_SECONDS": "2",
        "VOXFLEET_LOG_LEVEL": "INFO",
        **env,
    }
    c = Cluster(workdir, redis, database_url, base_env)
    try:
        subprocess.run(
            [sys.executable, "-m", "voxfleet", "migrate"],
            env={**os.environ, **base_env},
            check=True,
            capture_output=True,
        )
        c.landing = c._spawn("landing", ["landing"], free_port(), {})
        c.monitor = c._spawn("monitor", ["monitor"], free_port(), {})
        for i in range(agents):
            c.start_agent(f"agent-{i + 1}", capacity)
        yield c
    except BaseException:
        print(c.logs(), file=sys.stderr)
        raise
    finally:
        c.stop()
        redis.cleanup()
        _drop_database(postgres_server, db_name)
