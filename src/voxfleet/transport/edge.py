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
from voxfleet.domain.calls import EndReason
from voxfleet.errors import VoxfleetError
from voxfleet.messages.client import Ended, Error, HangUp, Ready, Reconnect, State
from voxfleet.messages.room import Attached, AudioFrame
from voxfleet.observability.logging import get_logger
from voxfleet.observability.metrics import CALLS_ENDED, EDGE_AUDIO_DOWN, EDGE_FRAMES, EDGE_SOCKETS
from voxfleet.store.repository import CallStore
from voxfleet.transport.caller import INPUT_RATE, MAX_FRAME_MS, CallerReader, CallSocket
from voxfleet.transport.edge_link import AgentGaveUp, Dispatch, EdgeRoomLink
from voxfleet.transport.entry import Admitted, Refused, SocketEntry
from voxfleet.transport.room_watch import AgentWaiting, NoAgentInTime, Replaced
from voxfleet.transport.tokens import ResumeTokens

log = get_logger(__name__)

FINISH_TIMEOUT_S = 30.0  # how long the edge keeps trying to tell the agents a call ended

RESUME_POLL_S = 0.5  # how often a dropped socket's landing looks for the caller's resume

CLOSE_NORMAL = 1000
CLOSE_POLICY = 1008
CLOSE_INTERNAL = 1011
CLOSE_SERVICE_RESTART = 1012
CLOSE_REPLACED = 4410
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
    resume_window: float = 15.0  # how long a dropped caller may come back


class MediaEdge:
    def __init__(
        self,
        dispatch: Dispatch,
        store: CallStore,
        entry: SocketEntry,
        resume_tokens: ResumeTokens,
        limits: EdgeLimits,
    ) -> None:
        self._dispatch = dispatch
        self._store = store
        self._entry = entry
        self._resume_tokens = resume_tokens
        self._limits = limits
        self._sockets: dict[CallSocket, str] = {}  # live sockets -> their resume URL
        self.draining = False

    async def serve(self, ws: WebSocket, call_id: str, public_base: str) -> None:
        """Carry one caller socket; ``public_base`` is where callers reach us
        (``ws://host`` or ``wss://host``), for the resume URL."""
        await ws.accept()
        if self.draining and ws.query_params.get("resume"):
            # Going away: a caller moving here would only be moved again. Try later
            # (another replica, behind the same address, or this one restarted).
            await ws.close(CLOSE_SERVICE_RESTART, "server restarting; try again")
            return
        try:
            admitted = await self._entry.admit(ws, call_id)
        except Refused as e:
            await ws.close(e.code, e.reason)
            return
        EDGE_SOCKETS.inc()
        try:
            await self._relay(CallSocket(ws, call_id), admitted, public_base)
        finally:
            EDGE_SOCKETS.dec()

    async def _relay(self, sock: CallSocket, admitted: Admitted, public_base: str) -> None:
        call = admitted.call
        log.info("caller connected", call_id=call.id, resumed=admitted.resumed)
        link = EdgeRoomLink(
            self._dispatch,
            call.id,
            call.profile,
            self._limits.attach_timeout,
            admitted.socket,
            resumed=admitted.resumed,
            served=bool(admitted.sample_rate),
        )
        started = call.started_at or time.time()
        left = self._limits.max_call_seconds - (time.time() - started)
        self._sockets[sock] = self._resume_url(sock, link, 0, public_base)
        try:
            async with link, asyncio.TaskGroup() as tg:
                resume_from = None
                if admitted.sample_rate:  # resumed, and an agent serves the call
                    if admitted.previous is not None:
                        heard = await link.heard_of(admitted.previous)
                        resume_from = None if heard is None else heard + 1
                    await self._ready(
                        sock, link, admitted.sample_rate, 0.0, public_base, resume_from
                    )
                # A resumed caller sends again what the agent missed, and what it
                # kept while it had no socket: a burst the frame limits allow.
                burst = self._limits.resume_window + 2.0 if admitted.resumed else 0.0
                reader = CallerReader(sock, link.audio, resume_burst_s=burst)
                tasks = [
                    tg.create_task(reader.run(), name=f"edge:{call.id}:in"),
                    tg.create_task(
                        self._to_caller(sock, link, public_base), name=f"edge:{call.id}:out"
                    ),
                ]
                try:
                    async with asyncio.timeout(max(0.0, left)):
                        await sock.ended.wait()
                except TimeoutError:
                    sock.end(EndReason.MAX_DURATION)
                for task in tasks:
                    task.cancel()
                await self._after(sock, link)
        except TimeoutError:  # the bus stayed away for the whole queue timeout
            log.error("call could not start: bus unavailable", call_id=call.id)
            sock.end(EndReason.NO_AGENT)
            await self._finish(sock, None, EndReason.NO_AGENT)
        finally:
            self._sockets.pop(sock, None)

    async def _after(self, sock: CallSocket, link: EdgeRoomLink) -> None:
        """The socket is done; is the call? Not when the caller resumed on a newer
        socket, or may still: a socket that dropped (no ``end``) leaves the call
        waiting for its caller for the resume window."""
        if sock.replaced:
            log.info("caller resumed elsewhere", call_id=sock.call_id)
            await sock.close(CLOSE_REPLACED, "replaced by a newer connection")
            return
        reason = sock.reason or EndReason.CALLER_DISCONNECTED
        dropped = reason is EndReason.CALLER_DISCONNECTED and sock.resumable
        if dropped and await self._resumed_in_time(link):
            return
        await self._finish(sock, link, reason)

    async def _resumed_in_time(self, link: EdgeRoomLink) -> bool:
        link.park()
        deadline = time.monotonic() + self._limits.resume_window
        while time.monotonic() < deadline:
            await asyncio.sleep(RESUME_POLL_S)
            with contextlib.suppress(VoxfleetError):
                if not await link.watch.owned():
                    log.info("caller resumed elsewhere", call_id=link.call_id)
                    return True
        return False

    async def _to_caller(self, sock: CallSocket, link: EdgeRoomLink, public_base: str) -> None:
        async for event in link.events():
            if isinstance(event, AudioFrame):
                if sock.ready:
                    EDGE_AUDIO_DOWN.inc()
                    await sock.send_bytes(event.pcm)
            elif isinstance(event, Attached):
                if not sock.ready:
                    wait_ms = round((time.time() - event.enqueued_at) * 1000, 1)
                    await self._ready(sock, link, event.sample_rate, wait_ms, public_base)
            elif isinstance(event, AgentWaiting):
                await sock.send_json(State(state="queued"))
            elif isinstance(event, AgentGaveUp):
                await sock.send_json(Error(code="agent_error", message="the agent failed"))
                sock.end(EndReason.AGENT_ERROR)
                return
            elif isinstance(event, NoAgentInTime):
                sock.end(EndReason.NO_AGENT)
                return
            elif isinstance(event, Replaced):
                sock.replace()
                return
            elif isinstance(event, HangUp):
                sock.end(EndReason(event.reason))  # after its goodbye's audio, relayed above
                return
            elif sock.ready:
                EDGE_FRAMES.labels("down", "json").inc()
                await sock.send_json(event)

    async def _ready(
        self,
        sock: CallSocket,
        link: EdgeRoomLink,
        sample_rate: int,
        wait_ms: float,
        public_base: str,
        resume_from: int | None = None,
    ) -> None:
        resume_url = self._sockets[sock] = self._resume_url(sock, link, sample_rate, public_base)
        ready = Ready(
            call_id=sock.call_id,
            wait_ms=max(0.0, wait_ms),
            sample_rate=sample_rate,
            input_sample_rate=INPUT_RATE,
            max_frame_ms=MAX_FRAME_MS,
            resume_url=resume_url,
            resume_from=resume_from,
        )
        await sock.send_json(ready)
        sock.ready = sock.resumable = True
        if self.draining:
            await sock.send_json(Reconnect(resume_url=resume_url))

    def _resume_url(
        self, sock: CallSocket, link: EdgeRoomLink, sample_rate: int, public_base: str
    ) -> str:
        """Where this caller re-opens the call after a drop: a token naming this
        socket and the agent's audio rate (0: no agent yet)."""
        token, _expires = self._resume_tokens.issue(
            sock.call_id, time.time(), s=link.socket, r=sample_rate
        )
        return f"{public_base}/ws/calls/{sock.call_id}?resume={token}"

    async def drain(self, timeout: float) -> None:
        """A deploy: tell every caller to reconnect (through the same public
        address, so to another replica) and wait until their sockets are gone;
        those still here at ``timeout`` are closed (1012), and their calls wait
        for a resume as after any drop."""
        self.draining = True
        for sock, resume_url in list(self._sockets.items()):
            await sock.send_json(Reconnect(resume_url=resume_url))
            sock.resumable = True
        deadline = time.monotonic() + timeout
        while self._sockets and time.monotonic() < deadline:  # noqa: ASYNC110 - bounded poll
            await asyncio.sleep(0.05)
        for sock in list(self._sockets):
            await sock.close(CLOSE_SERVICE_RESTART, "server restarting; resume the call")
        log.info("landing drained", sockets_left=len(self._sockets))

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
            await sock.close(_CLOSE_FOR_REASON.get(reason, CLOSE_NORMAL), reason.value)
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
