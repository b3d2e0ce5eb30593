"""A throwaway ``redis-server`` on a free local port, for tests that need a real
Redis they may stop, restart, protect with a password or serve over TLS (never the
shared one)."""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

START_TIMEOUT_S = 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """``redis-server`` without persistence on 127.0.0.1:``port``.

    ``start()`` returns once the server answers PING; ``stop()`` sends SIGTERM and
    waits for the process to exit; ``restart()`` does both on the same port (the
    new server starts empty, as a real Redis restart without persistence does).
    With ``tls=True`` it serves only TLS, with a self-signed certificate whose CA
    file is ``ca_file``."""

    def __init__(
        self, port: int | None = None, *, password: str | None = None, tls: bool = False
    ) -> None:
        self.port = port if port is not None else free_port()
        self.password = password
        self.tls = tls
        self._dir = Path(tempfile.mkdtemp(prefix="vf-redis-"))
        self._proc: subprocess.Popen[bytes] | None = None
        if tls:
            self._make_certificate()

    @property
    def url(self) -> str:
        return f"{'rediss' if self.tls else 'redis'}://127.0.0.1:{self.port}/0"

    @property
    def ca_file(self) -> Path:
        return self._dir / "cert.pem"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        if self.running:
            return
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        args = [binary, "--bind", "127.0.0.1"]
        if self.tls:
            args += ["--port", "0", "--tls-port", str(self.port), "--tls-auth-clients", "no"]
            args += ["--tls-cert-file", str(self.ca_file), "--tls-key-file", str(self._key)]
        else:
            args += ["--port", str(self.port)]
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

    def stop(self) -> None:
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
            s = stack.enter_context(socket.create_connection(("127.0.0.1", self.port), 0.5))
            if self.tls:
                context = ssl.create_default_context(cafile=self.ca_file)
                s = stack.enter_context(context.wrap_socket(s, server_hostname="127.0.0.1"))
            s.sendall(b"PING\r\n")
            return s.recv(64)[:1] in (b"+", b"-")
        return False

    def _log_tail(self) -> str:
        path = self._dir / "redis.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""
