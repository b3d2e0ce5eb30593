"""The WebSocket media edge: relays between one caller's socket and the bus.

Caller frames are checked (token, framing, size, rate) and published to
``room/{id}/up``; whatever the serving agent publishes to ``room/{id}/down`` is
forwarded to the socket. The caller never addresses an agent, so the agent
behind a room can change while the socket stays open."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from voxfleet.bus.base import Bus, Subscription, room_down
from voxfleet.bus.messages import Audio, Control, MalformedMessage, decode
from voxfleet.dispatch.base import RoomJob, RoomQueue
from voxfleet.domain.calls import CallStatus, EndReason
from voxfleet.errors import AuthError, VoxfleetError
from voxfleet.observability.logging import get_logger
from voxfleet.observability.metrics import (
    CALLS_ENDED,
    EDGE_BAD_FRAMES,
    EDGE_FRAMES,
    EDGE_SOCKETS,
)
from voxfleet.store.repository import CallStore
from voxfleet.transport.ratelimit import AudioRateLimit
from voxfleet.transport.tokens import MediaTokens
from voxfleet.transport.uplink import Uplink

log = get_logger(__name__)

INPUT_RATE = 16000
MAX_FRAME_MS = 200
MAX_FRAME_BYTES = INPUT_RATE * MAX_FRAME_MS // 1000 * 2
MAX_TEXT_CHARS = 4096
CLIENT_TYPES = {"state", "transcript", "interrupt", "error"}
DEFAULT_AGENT_RATE = 22050
END_RECORD_ATTEMPTS = 8  # ~30 s of backoff
QUEUED_AFTER_S = 1.0  # no agent within this: tell the caller it is queued

CLOSE_NORMAL = 1000
CLOSE_INTERNAL = 1011
CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_CONFLICT = 4409
CLOSE_FLOOD = 4429
CLOSE_NO_AGENT = 4503

_CLOSE_FOR_REASON = {
    EndReason.FLOOD: CLOSE_FLOOD,
    EndReason.AGENT_ERROR: CLOSE_INTERNAL,
    EndReason.SERVER_SHUTDOWN: CLOSE_INTERNAL,
    EndReason.NO_AGENT: CLOSE_NO_AGENT,
}


@dataclass(slots=True, frozen=True)
class EdgeLimits:
    attach_timeout: float = 120.0  # how long a call may wait in the queue
    max_call_seconds: float = 1800.0


class _CallSocket:
    """One caller's socket: serialised sends, and the end reason once known."""

    def __init__(self, ws: WebSocket, call_id: str) -> None:
        self.ws = ws
        self.call_id = call_id
        self.ready = False
        self._send_lock = asyncio.Lock()
        self.ended = asyncio.Event()
        self.reason: EndReason | None = None

    def end(self, reason: EndReason) -> None:
        if self.reason is None:
            self.reason = reason
        self.ended.set()

    @property
    def open(self) -> bool:
        return (
            self.ws.application_state == WebSocketState.CONNECTED
            and self.ws.client_state == WebSocketState.CONNECTED
        )

    async def send_json(self, body: dict[str, Any]) -> None:
        await self._send(text=json.dumps(body, separators=(",", ":")))

    async def send_bytes(self, data: bytes) -> None:
        await self._send(data=data)

    async def _send(self, text: str | None = None, data: bytes | None = None) -> None:
        async with self._send_lock:
            if not self.open:
                return
            try:
                if text is not None:
                    await self.ws.send_text(text)
                elif data is not None:
                    await self.ws.send_bytes(data)
            except (WebSocketDisconnect, RuntimeError, OSError):
                self.end(EndReason.CALLER_DISCONNECTED)

    async def error(self, code: str, message: str) -> None:
        EDGE_BAD_FRAMES.labels(code).inc()
        await self.send_json({"type": "error", "code": code, "message": message})


class MediaEdge:
    def __init__(
        self,
        bus: Bus,
        queue: RoomQueue,
        store: CallStore,
        tokens: MediaTokens,
        limits: EdgeLimits,
    ) -> None:
        self._bus = bus
        self._queue = queue
        self._store = store
        self._tokens = tokens
        self._limits = limits

    async def serve(self, ws: WebSocket, call_id: str, token: str | None) -> None:
        await ws.accept()
        if not token:
            await ws.close(
                CLOSE_BAD_REQUEST, "token: missing; use the media_url from POST /api/calls"
            )
            return
        try:
            self._tokens.verify(token, call_id, time.time())
        except AuthError as e:
            code = CLOSE_FORBIDDEN if e.code == "token_foreign" else CLOSE_UNAUTHORIZED
            await ws.close(code, e.message)
            return
        call = await self._store.get_call(call_id)
        if call is None:
            await ws.close(CLOSE_NOT_FOUND, "call: no such call")
            return
        if call.status is not CallStatus.CREATED or not await self._store.mark_active(
            call_id, time.time()
        ):
            await ws.close(CLOSE_CONFLICT, "call: already ended or already connected")
            return
        EDGE_SOCKETS.inc()
        try:
            await self._relay(_CallSocket(ws, call_id), call.profile)
        finally:
            EDGE_SOCKETS.dec()

    async def _relay(self, sock: _CallSocket, profile: str) -> None:
        call_id = sock.call_id
        log.info("caller connected", call_id=call_id)
        down = await self._bus.subscribe(room_down(call_id))
        uplink = Uplink(self._bus, call_id)
        try:
            await self._queue.put(
                RoomJob(room_id=call_id, profile=profile, enqueued_at=time.time())
            )
            async with asyncio.TaskGroup() as tg:
                pump = tg.create_task(uplink.run(), name=f"edge:{call_id}:pump")
                ticker = tg.create_task(uplink.tick(), name=f"edge:{call_id}:tick")
                reader = tg.create_task(self._from_caller(sock, uplink), name=f"edge:{call_id}:in")
                writer = tg.create_task(
                    self._to_caller(sock, down, uplink), name=f"edge:{call_id}:out"
                )
                try:
                    async with asyncio.timeout(self._limits.max_call_seconds):
                        await sock.ended.wait()
                except TimeoutError:
                    sock.end(EndReason.MAX_DURATION)
                for task in (reader, writer, pump, ticker):
                    task.cancel()
        finally:
            await down.close()
            reason = sock.reason or EndReason.CALLER_DISCONNECTED
            await uplink.control("hangup", reason=reason.value)
            await self._finish(sock, reason)

    async def _finish(self, sock: _CallSocket, reason: EndReason) -> None:
        CALLS_ENDED.labels(reason.value).inc()
        log.info("call ended", call_id=sock.call_id, reason=reason.value)
        ended_at = time.time()
        # Recorded before the socket closes, so a client that reads the call right
        # after sees it ended; a database outage is ridden out after the close.
        recorded = await self._record_end(sock.call_id, reason, ended_at, attempts=1)
        if sock.open and reason is not EndReason.CALLER_DISCONNECTED:
            await sock.send_json({"type": "ended", "reason": reason.value})
            code = _CLOSE_FOR_REASON.get(reason, CLOSE_NORMAL)
            with contextlib.suppress(RuntimeError, OSError):
                await sock.ws.close(code, reason.value)
        if not recorded and not await self._record_end(
            sock.call_id, reason, ended_at, attempts=END_RECORD_ATTEMPTS
        ):
            log.error("could not record call end", call_id=sock.call_id, reason=reason.value)

    async def _record_end(self, call_id: str, reason: EndReason, at: float, attempts: int) -> bool:
        for attempt in range(attempts):
            try:
                await self._store.end_call(call_id, reason, at)
                return True
            except VoxfleetError as e:
                if not e.retryable:
                    return False
                if attempt + 1 < attempts:
                    await asyncio.sleep(min(0.2 * 2**attempt, 5.0))
        return False

    async def _to_caller(self, sock: _CallSocket, down: Subscription, uplink: Uplink) -> None:
        attached = await self._wait_for_agent(sock, down, uplink)
        if attached is None:
            return
        sample_rate, wait_ms = attached
        await sock.send_json(
            {
                "type": "ready",
                "call_id": sock.call_id,
                "wait_ms": wait_ms,
                "sample_rate": sample_rate,
                "input_sample_rate": INPUT_RATE,
                "max_frame_ms": MAX_FRAME_MS,
            }
        )
        sock.ready = True
        async for message in down:
            try:
                decoded = decode(message)
            except MalformedMessage as e:
                log.warning("malformed bus message dropped", call_id=sock.call_id, error=str(e))
                continue
            if isinstance(decoded, Audio):
                EDGE_FRAMES.labels("down", "audio").inc()
                await sock.send_bytes(decoded.pcm)
            elif decoded.type in CLIENT_TYPES:
                EDGE_FRAMES.labels("down", "json").inc()
                await sock.send_json({"type": decoded.type, **decoded.body})
            elif decoded.type in ("attached", "replay"):
                # A new agent took the room (failover, handover), or an agent
                # missed frames on the bus: send again what it has not heard.
                after = decoded.body.get("replay_from", decoded.body.get("after", 0))
                uplink.replay(int(after) if isinstance(after, int) else 0)
            elif decoded.type == "agent_failed":
                await sock.send_json(
                    {"type": "error", "code": "agent_error", "message": "the agent failed"}
                )
                sock.end(EndReason.AGENT_ERROR)
                return

    async def _wait_for_agent(
        self, sock: _CallSocket, down: Subscription, uplink: Uplink
    ) -> tuple[int, float] | None:
        """Wait until an agent attaches, saying "queued" if none does at once.
        Returns the agent's audio rate and how long the room waited for it (ms,
        queued to attached); None when no agent came in time."""
        deadline = time.monotonic() + self._limits.attach_timeout
        queued_sent = False
        while (left := deadline - time.monotonic()) > 0:
            message = await down.get(timeout=min(left, QUEUED_AFTER_S))
            if message is None:
                if not queued_sent and time.monotonic() < deadline:
                    await sock.send_json({"type": "state", "state": "queued"})
                    queued_sent = True
                continue
            try:
                decoded = decode(message)
            except MalformedMessage:
                continue
            if isinstance(decoded, Control) and decoded.type == "attached":
                uplink.replay(0)
                rate = decoded.body.get("sample_rate")
                queued_at = decoded.body.get("enqueued_at")
                wait_ms = (
                    round((time.time() - queued_at) * 1000, 1)
                    if isinstance(queued_at, (int, float))
                    else 0.0
                )
                if not (isinstance(rate, int) and rate > 0):
                    rate = DEFAULT_AGENT_RATE
                return rate, wait_ms
        sock.end(EndReason.NO_AGENT)
        return None

    async def _from_caller(self, sock: _CallSocket, uplink: Uplink) -> None:
        limit = AudioRateLimit()
        while True:
            message = await sock.ws.receive()
            if message["type"] == "websocket.disconnect":
                sock.end(EndReason.CALLER_DISCONNECTED)
                return
            data: bytes | None = message.get("bytes")
            text: str | None = message.get("text")
            if data is not None:
                if not sock.ready:
                    await sock.error("not_ready", "audio before ready: wait for the ready message")
                elif not data or len(data) % 2:
                    await sock.error(
                        "bad_audio_frame",
                        f"audio frame of {len(data)} bytes: expected whole PCM16 samples",
                    )
                elif len(data) > MAX_FRAME_BYTES:
                    await sock.error(
                        "frame_too_long",
                        f"audio frame of {len(data) // 32} ms: at most {MAX_FRAME_MS} ms",
                    )
                elif not limit.admit(len(data) / 2 / INPUT_RATE, time.monotonic()):
                    await sock.error("flood", "audio faster than real time")
                    sock.end(EndReason.FLOOD)
                    return
                else:
                    EDGE_FRAMES.labels("up", "audio").inc()
                    uplink.audio(data)
            elif text is not None and await self._on_text(sock, text):
                return

    async def _on_text(self, sock: _CallSocket, text: str) -> bool:
        """Handle a text frame; True when it ends the call."""
        if len(text) > MAX_TEXT_CHARS:
            await sock.error("message_too_long", f"text message over {MAX_TEXT_CHARS} characters")
            return False
        try:
            body = json.loads(text)
        except json.JSONDecodeError as e:
            await sock.error("invalid_json", f"text message is not JSON: {e.msg}")
            return False
        except RecursionError:
            await sock.error("invalid_json", "text message is nested too deeply")
            return False
        if not isinstance(body, dict) or not isinstance(body.get("type"), str):
            await sock.error("invalid_json", "text message must be an object with a string 'type'")
            return False
        if body["type"] == "end":
            sock.end(EndReason.CALLER_ENDED)
            return True
        await sock.error("unknown_type", f"unknown message type {body['type'][:64]!r}")
        return False
