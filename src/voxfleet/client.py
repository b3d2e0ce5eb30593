"""A Python client of the public call API (docs/protocol.md): create a call,
stream audio, collect what comes back. The tests and benchmarks use it, and so
can a load generator or a telephony bridge."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from voxfleet.aio import Backoff, TaskSet
from voxfleet.kept_frames import KeptFrames

# A JSON message or response body, as parsed: read its fields with a check of their type.
Json = dict[str, object]

# Close codes after which a call is over for this client: no resume.
FINAL_CLOSES = {1008, 4400, 4401, 4403, 4404, 4409, 4410, 4429, 4503}


@dataclass
class CallClient:
    """One call: creates it, opens the media socket, collects what comes back.

    ``create()`` keeps the call's read token, which ``get_call()`` presents
    while the call is live; ``admin_key`` (the admin API key), when given, is
    presented instead: it reads any call, ended or not.
    With ``reconnect`` (the default) the client follows the server's
    ``reconnect`` message (opening the new socket before closing the old one)
    and re-opens the call's ``resume_url`` after an unexpected drop, with
    jittered backoff, for up to ``resume_window`` seconds; audio sent while no
    socket is open is dropped, as a microphone's would be."""

    base: str
    call_id: str = ""
    admin_key: str | None = None
    read_token: str | None = None
    reconnect: bool = True
    resume_window: float = 30.0
    ws: ClientConnection | None = None
    resume_url: str | None = None
    reconnects: int = 0
    gaps: list[float] = field(default_factory=list)  # seconds without a socket, per drop
    messages: list[Json] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)  # monotonic arrival of each message
    audio: list[tuple[float, bytes]] = field(default_factory=list)  # (arrival time, frame)
    # Everything received, in order: a message, or the byte count of an audio frame.
    received: list[Json | int] = field(default_factory=list)
    ready: Json | None = None
    _reader: asyncio.Task[None] | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: TaskSet = field(default_factory=lambda: TaskSet("client"))
    _ended: bool = False
    _closing: bool = False
    _frames: KeptFrames = field(default_factory=KeptFrames)  # for an exact resume
    _send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def create(self, **body: object) -> Json:
        async with httpx.AsyncClient() as http:
            r = await http.post(f"{self.base}/api/calls", json=body)
            r.raise_for_status()
            data: Json = r.json()
        self.call_id = str(data["id"])
        token = data.get("read_token")
        self.read_token = token if isinstance(token, str) else None
        return data

    async def connect(self, media_url: str, wait_ready: bool = True) -> None:
        self.ws = await _open(media_url)
        self._reader = self._tasks.spawn(self._run(), self.call_id)
        if wait_ready:
            self.ready = await self.wait_for(lambda m: m["type"] == "ready")

    async def start(self, **body: object) -> None:
        data = await self.create(**body)
        await self.connect(str(data["media_url"]))

    def _socket(self) -> ClientConnection:
        if self.ws is None:
            raise RuntimeError("not connected: call connect() or start() first")
        return self.ws

    async def send_json(self, body: Json) -> None:
        await self._socket().send(json.dumps(body))

    async def end(self) -> None:
        """Hang up the way the protocol says: {"type": "end"}."""
        await self.send_json({"type": "end"})

    # -- reading, and moving to a new socket -----------------------------------------

    async def _run(self) -> None:
        while True:
            ws = self._socket()
            await self._read(ws)
            if self._closing:
                return
            if self.ws is not ws:  # moved to a new socket (_move)
                continue
            if not self._may_resume():
                return
            dropped_at = time.monotonic()
            opened = await self._reopen()
            if opened is None:
                return
            self.gaps.append(time.monotonic() - dropped_at)
            await self._adopt(*opened)

    async def _read(self, ws: ClientConnection) -> None:
        """Until ``ws`` closes; a ``reconnect`` starts a move, and reading goes on
        until the new socket has taken over."""
        try:
            async for message in ws:
                body = self._take(message)
                if body is None or body.get("type") != "reconnect":
                    continue
                if self.reconnect and self.resume_url:
                    self._tasks.spawn(self._move(ws, self.resume_url), "move")
        except ConnectionClosed:
            pass
        finally:
            self._changed.set()

    def _take(self, message: str | bytes) -> Json | None:
        """Keep what arrived, in order; the message, or None for audio."""
        now = time.monotonic()
        self._changed.set()
        if isinstance(message, bytes):
            self.audio.append((now, message))
            self.received.append(len(message))
            return None
        body: Json = json.loads(message)
        self.messages.append(body)
        self.arrivals.append(now)
        self.received.append(body)
        self._note(body)
        return body

    async def _move(self, old: ClientConnection, url: str) -> None:
        """The server is going away: make before break. The old socket carries
        the call until a new one has taken it (a server that is itself going
        away refuses; try again)."""
        backoff = Backoff(0.1, 1.0)
        while self.ws is old and old.close_code is None and not self._closing:
            opened = await self._opened(url)
            if opened is not None:
                await self._adopt(*opened)
                await old.close()
                return
            await backoff.sleep()

    async def _adopt(self, ws: ClientConnection, ready: Json | None) -> None:
        """``ws`` carries the call from now. When its ``ready`` says the agent did
        not hear the previous socket's frames from ``resume_from`` on, those go
        again first, then what was captured while no socket was open."""
        async with self._send_lock:
            resume_from = (ready or {}).get("resume_from")
            again = self._frames.for_new_socket(
                resume_from if isinstance(resume_from, int) else None
            )
            self.ws = ws
            self.reconnects += 1
            for frame in again:
                await self._send_frame(frame)

    def _note(self, body: Json) -> None:
        kind = body.get("type")
        url = body.get("resume_url")
        if kind in ("ready", "reconnect") and isinstance(url, str):
            self.resume_url = url
        if kind == "ended":
            self._ended = True

    def _may_resume(self) -> bool:
        code = self._socket().close_code
        return (
            self.reconnect
            and not self._ended
            and self.resume_url is not None
            and code not in FINAL_CLOSES
        )

    async def _reopen(self) -> tuple[ClientConnection, Json | None] | None:
        backoff = Backoff(0.1, 2.0)
        deadline = time.monotonic() + self.resume_window
        while time.monotonic() < deadline and self.resume_url is not None:
            opened = await self._opened(self.resume_url)
            if opened is not None:
                return opened
            await backoff.sleep()
        return None

    async def _opened(self, url: str) -> tuple[ClientConnection, Json | None] | None:
        """A socket to ``url`` that took the call, with its first message (its
        ``ready``), or None: refused, unreachable, or a server going away too."""
        ws = await _try_open(url)
        if ws is None:
            return None
        try:
            first = await asyncio.wait_for(ws.recv(), 5)
        except (ConnectionClosed, TimeoutError):
            await ws.close()
            if ws.close_code in FINAL_CLOSES:
                self.resume_url = None  # the call is over, or someone else has it
            return None
        return ws, self._take(first)

    # -- waiting and sending -----------------------------------------------------------

    async def wait_for(
        self, predicate: Callable[[Json], bool], timeout: float = 20.0, start: int = 0
    ) -> Json:
        async with asyncio.timeout(timeout):
            while True:
                for m in self.messages[start:]:
                    if predicate(m):
                        return m
                if self._reader is not None and self._reader.done():
                    raise ConnectionError(f"socket closed; messages: {self.messages[-5:]}")
                self._changed.clear()
                await self._changed.wait()

    async def send_audio(self, pcm: bytes, frame_ms: int = 20, realtime: bool = True) -> None:
        """Stream ``pcm`` in frames of ``frame_ms``, at real time by default. A
        frame that finds no open socket is kept (up to 10 s) and sent once the
        call is resumed, as is whatever the agent turns out to have missed."""
        size = 16000 * frame_ms // 1000 * 2
        start = time.monotonic()
        for i, offset in enumerate(range(0, len(pcm), size)):
            async with self._send_lock:
                await self._send_frame(pcm[offset : offset + size])
            if realtime:
                delay = start + (i + 1) * frame_ms / 1000 - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)

    async def _send_frame(self, frame: bytes) -> None:
        ws = self._socket()
        if ws.close_code is None and not self._frames.waiting:
            with contextlib.suppress(ConnectionClosed):
                await ws.send(frame)
                self._frames.sent(frame)
                return
        self._frames.unsent(frame)

    async def closed(self, timeout: float = 10.0) -> tuple[int | None, str | None]:
        """Wait until the call's last socket closed for good; its close code and reason."""
        if self._reader is not None:
            await asyncio.wait_for(asyncio.shield(self._reader), timeout)
        ws = self._socket()
        return ws.close_code, ws.close_reason

    async def close(self) -> None:
        self._closing = True
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await asyncio.wait_for(self._reader, 10)
        await self._tasks.cancel_all()

    def of_type(self, type_: str) -> list[Json]:
        return [m for m in self.messages if m["type"] == type_]

    def finals(self, role: str) -> list[Json]:
        return [m for m in self.of_type("transcript") if m["role"] == role and m["final"]]

    async def get_call(self) -> Json:
        """The call's record (``GET /api/calls/{id}``), with its turns."""
        credential = self.admin_key or self.read_token
        if credential is None:
            raise RuntimeError("no read token (call create() first) and no admin_key")
        async with httpx.AsyncClient() as http:
            r = await http.get(
                f"{self.base}/api/calls/{self.call_id}",
                headers={"Authorization": f"Bearer {credential}"},
            )
            r.raise_for_status()
            data: Json = r.json()
            return data


async def _open(url: str) -> ClientConnection:
    return await connect(url, max_size=1 << 20, open_timeout=5)


async def _try_open(url: str) -> ClientConnection | None:
    """A socket to ``url``, or None when it refuses or cannot be reached."""
    try:
        return await _open(url)
    except (OSError, InvalidHandshake, InvalidStatus, TimeoutError, ConnectionClosed):
        return None
