"""The WebSocket media edge: relays between one caller's socket and the bus.

Caller frames are checked (transport/caller.py) and go out in the caller's
numbered stream; what the serving agent says comes back in order, once, and
goes to the socket (transport/edge_link.py). The caller never addresses an
agent, so the agent behind a room can change while the socket stays open."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

from starlette.websockets import WebSocket

from voxfleet.aio import Backoff
from voxfleet.domain.calls import CallStatus, EndReason, is_call_id
from voxfleet.errors import AuthError, VoxfleetError
from voxfleet.messages.client import Ended, Error, Ready, State
from voxfleet.messages.room import Attached, AudioFrame
from voxfleet.observability.logging import get_logger
from voxfleet.observability.metrics import CALLS_ENDED, EDGE_FRAMES, EDGE_SOCKETS
from voxfleet.store.repository import CallStore
from voxfleet.transport.caller import INPUT_RATE, MAX_FRAME_MS, CallerReader, CallSocket
from voxfleet.transport.edge_link import (
    AgentGaveUp,
    AgentWaiting,
    Dispatch,
    EdgeRoomLink,
    NoAgentInTime,
)
from voxfleet.transport.tokens import MediaTokens

log = get_logger(__name__)

FINISH_TIMEOUT_S = 30.0  # how long the edge keeps trying to tell the agents a call ended

CLOSE_NORMAL = 1000
CLOSE_POLICY = 1008
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
    EndReason.PROTOCOL_ERROR: CLOSE_POLICY,
    EndReason.AGENT_ERROR: CLOSE_INTERNAL,
    EndReason.SERVER_SHUTDOWN: CLOSE_INTERNAL,
    EndReason.NO_AGENT: CLOSE_NO_AGENT,
}


@dataclass(slots=True, frozen=True)
class EdgeLimits:
    attach_timeout: float = 120.0  # how long a call may wait in the queue
    max_call_seconds: float = 1800.0


class MediaEdge:
    def __init__(
        self, dispatch: Dispatch, store: CallStore, tokens: MediaTokens, limits: EdgeLimits
    ) -> None:
        self._dispatch = dispatch
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
        call = await self._store.get_call(call_id) if is_call_id(call_id) else None
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
            await self._relay(CallSocket(ws, call_id), call.profile)
        finally:
            EDGE_SOCKETS.dec()

    async def _relay(self, sock: CallSocket, profile: str) -> None:
        call_id = sock.call_id
        log.info("caller connected", call_id=call_id)
        link = EdgeRoomLink(self._dispatch, call_id, profile, self._limits.attach_timeout)
        try:
            async with link, asyncio.TaskGroup() as tg:
                tasks = [
                    tg.create_task(CallerReader(sock, link.audio).run(), name=f"edge:{call_id}:in"),
                    tg.create_task(self._to_caller(sock, link), name=f"edge:{call_id}:out"),
                ]
                try:
                    async with asyncio.timeout(self._limits.max_call_seconds):
                        await sock.ended.wait()
                except TimeoutError:
                    sock.end(EndReason.MAX_DURATION)
                for task in tasks:
                    task.cancel()
                await self._finish(sock, link, sock.reason or EndReason.CALLER_DISCONNECTED)
        except TimeoutError:  # the bus stayed away for the whole queue timeout
            log.error("call could not start: bus unavailable", call_id=call_id)
            sock.end(EndReason.NO_AGENT)
            await self._finish(sock, None, EndReason.NO_AGENT)

    async def _to_caller(self, sock: CallSocket, link: EdgeRoomLink) -> None:
        async for event in link.events():
            if isinstance(event, AudioFrame):
                if sock.ready:
                    EDGE_FRAMES.labels("down", "audio").inc()
                    await sock.send_bytes(event.pcm)
            elif isinstance(event, Attached):
                if not sock.ready:
                    await self._ready(sock, event)
            elif isinstance(event, AgentWaiting):
                await sock.send_json(State(state="queued"))
            elif isinstance(event, AgentGaveUp):
                await sock.send_json(Error(code="agent_error", message="the agent failed"))
                sock.end(EndReason.AGENT_ERROR)
                return
            elif isinstance(event, NoAgentInTime):
                sock.end(EndReason.NO_AGENT)
                return
            elif sock.ready:
                EDGE_FRAMES.labels("down", "json").inc()
                await sock.send_json(event)

    async def _ready(self, sock: CallSocket, attached: Attached) -> None:
        wait_ms = round((time.time() - attached.enqueued_at) * 1000, 1)
        ready = Ready(
            call_id=sock.call_id,
            wait_ms=max(0.0, wait_ms),
            sample_rate=attached.sample_rate,
            input_sample_rate=INPUT_RATE,
            max_frame_ms=MAX_FRAME_MS,
        )
        await sock.send_json(ready)
        sock.ready = True

    # -- the end ------------------------------------------------------------------

    async def _finish(self, sock: CallSocket, link: EdgeRoomLink | None, reason: EndReason) -> None:
        CALLS_ENDED.labels(reason.value).inc()
        log.info("call ended", call_id=sock.call_id, reason=reason.value)
        ended_at = time.time()
        # Recorded before the socket closes, so a client that reads the call right
        # after sees it ended; an outage is ridden out after the close.
        recorded = await self._record_end(sock.call_id, reason, ended_at)
        if sock.open and reason is not EndReason.CALLER_DISCONNECTED:
            await sock.send_json(Ended(reason=reason.value))
            code = _CLOSE_FOR_REASON.get(reason, CLOSE_NORMAL)
            with contextlib.suppress(RuntimeError, OSError):
                await sock.ws.close(code, reason.value)
        try:
            async with asyncio.timeout(FINISH_TIMEOUT_S):
                if link is not None:
                    await link.finish(reason.value)
                backoff = Backoff(0.1, 2.0)
                while not recorded:
                    await backoff.sleep()
                    recorded = await self._record_end(sock.call_id, reason, ended_at)
        except TimeoutError:
            log.error("could not record call end everywhere", call_id=sock.call_id)

    async def _record_end(self, call_id: str, reason: EndReason, at: float) -> bool:
        """True once recorded (or when retrying cannot help)."""
        try:
            await self._store.end_call(call_id, reason, at)
        except VoxfleetError as e:
            if not e.retryable:
                log.error("could not record call end", call_id=call_id, error=e.code)
                return True
            return False
        return True
