"""A TCP load balancer for tests, as a Kubernetes Service sends traffic: each
new connection goes to the next backend whose ``/readyz`` answers 200 (checked
every 100 ms). ``cut(seconds)`` is a network outage between the callers and
the servers: every connection is dropped and none is taken for that long."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time

import httpx

from tests.support.server import free_port
from voxfleet.aio import TaskSet


class Balancer:
    def __init__(self, backends: list[str]) -> None:
        """``backends``: base URLs (``http://127.0.0.1:port``)."""
        self.backends = list(backends)
        self.port = free_port()
        self._ready: set[str] = set(backends)
        self._turns = {True: itertools.count(), False: itertools.count()}
        self._links: set[asyncio.StreamWriter] = set()
        self._down_until = 0.0
        self._tasks = TaskSet("balancer")
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def cut(self, seconds: float) -> None:
        """Drop every connection now and refuse new ones for ``seconds``."""
        self._down_until = time.monotonic() + seconds
        for writer in list(self._links):
            writer.transport.abort()

    async def _probe(self) -> None:
        async with httpx.AsyncClient(timeout=0.5) as http:
            while True:
                for backend in list(self.backends):
                    try:
                        ok = (await http.get(f"{backend}/readyz")).status_code == 200
                    except httpx.HTTPError:
                        ok = False
                    (self._ready.add if ok else self._ready.discard)(backend)
                await asyncio.sleep(0.1)

    def _pick(self, socket: bool) -> str | None:
        ready = [b for b in self.backends if b in self._ready]
        return ready[next(self._turns[socket]) % len(ready)] if ready else None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if time.monotonic() < self._down_until:
            writer.transport.abort()
            return
        try:
            first = await asyncio.wait_for(reader.read(65536), 5)
        except (OSError, TimeoutError):
            writer.transport.abort()
            return
        backend = self._pick(socket=b" /ws/" in first.split(b"\r\n", 1)[0])
        if backend is None or not first:
            writer.transport.abort()
            return
        host, port = backend.removeprefix("http://").split(":")
        try:
            up_reader, up_writer = await asyncio.open_connection(host, int(port))
        except OSError:
            writer.transport.abort()
            return
        self._links.update((writer, up_writer))
        up_writer.write(first)
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                self._links.discard(w)
                w.transport.abort()

    async def __aenter__(self) -> Balancer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self._tasks.spawn(self._probe(), "probe")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._links):
            writer.transport.abort()
        await self._tasks.cancel_all()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.transport.abort()
