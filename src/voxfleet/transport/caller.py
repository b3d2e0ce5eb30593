"""The caller's WebSocket as the edge sees it: serialised sends, and a reader
that checks every frame the client sends (framing, size, rate) before
anything reaches the bus.

Every frame, text or binary, counts toward the socket's frame rate; audio also
counts toward seconds of audio (a microphone makes one second per second).
Each bad frame gets an ``error`` reply and costs from a small budget; a client
that exhausts it is closed (1008), so a flood of bad frames costs the server a
handful of replies, not one per frame."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from voxfleet.domain.calls import EndReason
from voxfleet.errors import ProtocolError
from voxfleet.messages.client import (
    Ended,
    Error,
    Interrupt,
    Ready,
    Reconnect,
    State,
    Transcript,
    parse_client_message,
)
from voxfleet.observability.metrics import EDGE_AUDIO_UP, EDGE_BAD_FRAMES
from voxfleet.transport.ratelimit import AudioRateLimit, Bucket

ServerMessage = Ready | State | Transcript | Interrupt | Error | Reconnect | Ended

INPUT_RATE = 16000
MAX_FRAME_MS = 200
MAX_FRAME_BYTES = INPUT_RATE * MAX_FRAME_MS // 1000 * 2
MAX_TEXT_CHARS = 4096
BAD_FRAME_BURST = 10.0  # bad frames a client may send at once ...
BAD_FRAMES_PER_S = 0.2  # ... and, after that, one per five seconds


class CallSocket:
    """One caller's socket: serialised sends, and the end reason once known."""

    def __init__(self, ws: WebSocket, call_id: str) -> None:
        self.ws = ws
        self.call_id = call_id
        self.ready = False
        self._send_lock = asyncio.Lock()
        self.ended = asyncio.Event()
        self.reason: EndReason | None = None
        self.replaced = False  # the caller resumed on a newer socket
        self.resumable = False  # the caller was given a resume URL

    def end(self, reason: EndReason) -> None:
        if self.reason is None:
            self.reason = reason
        self.ended.set()

    def replace(self) -> None:
        """Another socket of the same caller took the call over: this one goes,
        the call does not end."""
        self.replaced = True
        self.ended.set()

    @property
    def open(self) -> bool:
        return (
            self.ws.application_state == WebSocketState.CONNECTED
            and self.ws.client_state == WebSocketState.CONNECTED
        )

    async def send_json(self, message: ServerMessage) -> None:
        await self._send(text=message.to_json())

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

    async def close(self, code: int, reason: str) -> None:
        """Close the socket if it is still open; a peer already gone is fine."""
        async with self._send_lock:
            if self.open:
                with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
                    await self.ws.close(code, reason)

    async def error(self, code: str, message: str) -> None:
        EDGE_BAD_FRAMES.labels(code).inc()
        await self.send_json(Error(code=code, message=message))


class CallerReader:
    """Reads the caller's frames until the call ends; good audio goes to
    ``on_audio``. Ends the call (``sock.end``) on hang-up, disconnect, flood or
    too many bad frames."""

    def __init__(
        self,
        sock: CallSocket,
        on_audio: Callable[[bytes], object],
        resume_burst_s: float = 0.0,
    ) -> None:
        """``resume_burst_s``: extra seconds of audio a resumed socket may send at
        once (what the agent missed, and what the caller kept while away)."""
        self._sock = sock
        self._on_audio = on_audio
        self._limit = AudioRateLimit(
            audio_burst_s=2.0 + resume_burst_s, frame_burst=200.0 + 50.0 * resume_burst_s
        )
        self._bad = Bucket(rate=BAD_FRAMES_PER_S, burst=BAD_FRAME_BURST)
        self._told_not_ready = False

    async def run(self) -> None:
        sock = self._sock
        while not sock.ended.is_set():
            message = await sock.ws.receive()
            if message["type"] == "websocket.disconnect":
                sock.end(EndReason.CALLER_DISCONNECTED)
                return
            data: bytes | None = message.get("bytes")
            text: str | None = message.get("text")
            seconds = len(data) / 2 / INPUT_RATE if data is not None else 0.0
            if not self._limit.admit(seconds, time.monotonic()):
                await sock.error("flood", "frames faster than real time")
                sock.end(EndReason.FLOOD)
                return
            if data is not None:
                await self._on_binary(data)
            elif text is not None:
                await self._on_text(text)

    async def _bad_frame(self, error: ProtocolError) -> None:
        if not self._bad.take(1.0, time.monotonic()):
            await self._sock.error("too_many_errors", "too many bad frames; closing")
            self._sock.end(EndReason.PROTOCOL_ERROR)
            return
        await self._sock.error(error.code, error.message)

    async def _on_binary(self, data: bytes) -> None:
        if not self._sock.ready:
            # Said once: a client that starts streaming while queued is not wrong
            # enough to be closed, and its audio before `ready` has nowhere to go.
            if not self._told_not_ready:
                self._told_not_ready = True
                await self._sock.error("not_ready", "audio before ready: wait for ready")
            return
        try:
            check_audio_frame(data)
        except ProtocolError as e:
            await self._bad_frame(e)
            return
        EDGE_AUDIO_UP.inc()
        self._on_audio(data)

    async def _on_text(self, text: str) -> None:
        try:
            if len(text) > MAX_TEXT_CHARS:
                raise ProtocolError(
                    f"text over {MAX_TEXT_CHARS} characters", code="message_too_long"
                )
            parse_client_message(text)  # today the only client message is `end`
        except ProtocolError as e:
            await self._bad_frame(e)
            return
        self._sock.end(EndReason.CALLER_ENDED)


def check_audio_frame(data: bytes) -> None:
    """Raise ProtocolError unless ``data`` is whole PCM16 samples of at most
    MAX_FRAME_MS."""
    if not data or len(data) % 2:
        raise ProtocolError(
            f"audio frame of {len(data)} bytes: expected whole PCM16 samples",
            code="bad_audio_frame",
        )
    if len(data) > MAX_FRAME_BYTES:
        raise ProtocolError(
            f"audio frame of {len(data) // 32} ms: at most {MAX_FRAME_MS} ms",
            code="frame_too_long",
        )
