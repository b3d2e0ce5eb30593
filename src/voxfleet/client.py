"""A Python client of the public call API (docs/protocol.md): create a call,
stream audio, collect what comes back. The tests and benchmarks use it, and so
can a load generator or a telephony bridge."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from voxfleet.aio import TaskSet


@dataclass
class CallClient:
    """One call: creates it, opens the media socket, collects what comes back.

    ``create()`` keeps the call's read token, which ``get_call()`` presents;
    ``admin_key`` (the admin API key) reads a call this client did not create."""

    base: str
    call_id: str = ""
    admin_key: str | None = None
    read_token: str | None = None
    ws: ClientConnection | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    audio: list[tuple[float, bytes]] = field(default_factory=list)  # (arrival time, frame)
    # Everything received, in order: a message, or the byte count of an audio frame.
    received: list[dict[str, Any] | int] = field(default_factory=list)
    ready: dict[str, Any] | None = None
    _reader: asyncio.Task[None] | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def create(self, **body: Any) -> dict[str, Any]:
        async with httpx.AsyncClient() as http:
            r = await http.post(f"{self.base}/api/calls", json=body)
            r.raise_for_status()
            data: dict[str, Any] = r.json()
        self.call_id = data["id"]
        self.read_token = data.get("read_token")
        return data

    async def connect(self, media_url: str, wait_ready: bool = True) -> None:
        self.ws = await connect(media_url, max_size=1 << 20)
        self._reader = TaskSet("client").spawn(self._read(), self.call_id)
        if wait_ready:
            self.ready = await self.wait_for(lambda m: m["type"] == "ready")

    async def start(self, **body: Any) -> None:
        data = await self.create(**body)
        await self.connect(data["media_url"])

    def _socket(self) -> ClientConnection:
        if self.ws is None:
            raise RuntimeError("not connected: call connect() or start() first")
        return self.ws

    async def send_json(self, body: dict[str, Any]) -> None:
        await self._socket().send(json.dumps(body))

    async def end(self) -> None:
        """Hang up the way the protocol says: {"type": "end"}."""
        await self.send_json({"type": "end"})

    async def _read(self) -> None:
        ws = self._socket()
        try:
            async for message in ws:
                if isinstance(message, bytes):
                    self.audio.append((time.monotonic(), message))
                    self.received.append(len(message))
                else:
                    self.messages.append(json.loads(message))
                    self.received.append(self.messages[-1])
                self._changed.set()
        except Exception:  # noqa: S110 - the close is observed through ws.close_code
            pass
        finally:
            self._changed.set()

    async def wait_for(
        self, predicate: Any, timeout: float = 20.0, start: int = 0
    ) -> dict[str, Any]:
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
        ws = self._socket()
        size = 16000 * frame_ms // 1000 * 2
        start = time.monotonic()
        for i, offset in enumerate(range(0, len(pcm), size)):
            await ws.send(pcm[offset : offset + size])
            if realtime:
                delay = start + (i + 1) * frame_ms / 1000 - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)

    async def closed(self, timeout: float = 10.0) -> tuple[int | None, str | None]:
        ws = self._socket()
        if self._reader is not None:
            await asyncio.wait_for(asyncio.shield(self._reader), timeout)
        return ws.close_code, ws.close_reason

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await asyncio.wait_for(self._reader, 10)

    def of_type(self, type_: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == type_]

    def finals(self, role: str) -> list[dict[str, Any]]:
        return [m for m in self.of_type("transcript") if m["role"] == role and m["final"]]

    def replies_heard(self) -> list[tuple[dict[str, Any], int]]:
        """Each agent turn's final transcript with the bytes of agent audio that
        arrived since the turn before it (all of a reply's audio comes before
        its final transcript)."""
        out: list[tuple[dict[str, Any], int]] = []
        audio = 0
        for item in self.received:
            if isinstance(item, int):
                audio += item
            elif item["type"] == "transcript" and item["role"] == "agent" and item["final"]:
                out.append((item, audio))
                audio = 0
        return out

    async def get_call(self) -> dict[str, Any]:
        """The call's record (``GET /api/calls/{id}``), with its turns."""
        credential = self.read_token or self.admin_key
        if credential is None:
            raise RuntimeError("no read token (call create() first) and no admin_key")
        async with httpx.AsyncClient() as http:
            r = await http.get(
                f"{self.base}/api/calls/{self.call_id}",
                headers={"Authorization": f"Bearer {credential}"},
            )
            r.raise_for_status()
            data: dict[str, Any] = r.json()
            return data
