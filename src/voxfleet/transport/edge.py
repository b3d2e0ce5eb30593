"""The WebSocket media edge: relays between one caller's socket and the bus.

Caller frames are checked (transport/caller.py) and go out as the numbered
``room/{id}/up`` stream; the serving agent's numbered ``room/{id}/down`` stream
comes back in order, once, and goes to the socket (transport/stream.py). The
caller never addresses an agent, so the agent behind a room can change while
the socket stays open; the edge also watches that some agent does serve the
room, tells the caller when none does, and gives up after the queue timeout.
When the call ends, its queued job is cancelled and its room is ended for
every agent (a tombstone), so nothing serves a call that is over."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

from starlette.websockets import WebSocket

from voxfleet.aio import Backoff
from voxfleet.bus.base import Bus, Subscription, room_down, room_up
from voxfleet.bus.messages import Audio, Control, Numbered, decode, encode_control
from voxfleet.dispatch.base import RoomDirectory, RoomJob, RoomQueue
from voxfleet.domain.calls import CallStatus, EndReason, is_call_id
from voxfleet.errors import AuthError, MalformedMessage, VoxfleetError
from voxfleet.observability.logging import get_logger
from voxfleet.observability.metrics import CALLS_ENDED, EDGE_FRAMES, EDGE_SOCKETS
from voxfleet.store.repository import CallStore
from voxfleet.transport.bus_link import new_epoch
from voxfleet.transport.caller import INPUT_RATE, MAX_FRAME_MS, CallerReader, CallSocket
from voxfleet.transport.stream import Inbox, Outbox
from voxfleet.transport.tokens import MediaTokens

log = get_logger(__name__)

CLIENT_TYPES = {"state", "transcript", "interrupt", "error"}
DEFAULT_AGENT_RATE = 22050
QUEUED_AFTER_S = 1.0  # no agent within this: tell the caller it is queued
AGENT_SILENT_S = 3.0  # no word from the room's agent (it ticks every second): look for one
CHECK_JOB_EVERY_S = 5.0  # is our job still on the queue (a Redis restart loses it)?
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


@dataclass(slots=True)
class _Room:
    """The edge's view of who serves its room."""

    call_id: str
    profile: str
    up: Outbox
    job_id: str | None = None
    attached: bool = False  # an agent serves it now
    waiting_since: float = field(default_factory=time.monotonic)  # no agent since
    queued_told: bool = False
    heard_at: float = field(default_factory=time.monotonic)  # last word from the agent
    job_checked_at: float = field(default_factory=time.monotonic)


class MediaEdge:
    def __init__(
        self,
        bus: Bus,
        queue: RoomQueue,
        directory: RoomDirectory,
        store: CallStore,
        tokens: MediaTokens,
        limits: EdgeLimits,
    ) -> None:
        self._bus = bus
        self._queue = queue
        self._directory = directory
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
        room = _Room(call_id, profile, Outbox(self._bus, room_up(call_id), new_epoch()))
        pump = asyncio.create_task(room.up.run(), name=f"edge:{call_id}:up")
        try:
            async with await self._subscribe(room_down(call_id)) as down:
                try:
                    room.job_id = await self._put_job(room, resume=False)
                except VoxfleetError:
                    room.job_checked_at = 0.0  # Redis is away: the watch queues it
                async with asyncio.TaskGroup() as tg:
                    tasks = [
                        tg.create_task(room.up.ticks(), name=f"edge:{call_id}:tick"),
                        tg.create_task(
                            CallerReader(sock, room.up.push_audio).run(), name=f"edge:{call_id}:in"
                        ),
                        tg.create_task(
                            self._to_caller(sock, down, room), name=f"edge:{call_id}:out"
                        ),
                    ]
                    try:
                        async with asyncio.timeout(self._limits.max_call_seconds):
                            await sock.ended.wait()
                    except TimeoutError:
                        sock.end(EndReason.MAX_DURATION)
                    for task in tasks:
                        task.cancel()
        except TimeoutError:  # the bus stayed away for the whole queue timeout
            log.error("call could not start: bus unavailable", call_id=call_id)
            sock.end(EndReason.NO_AGENT)
        finally:
            reason = sock.reason or EndReason.CALLER_DISCONNECTED
            await self._finish(sock, room, reason, pump)

    async def _subscribe(self, topic: str) -> Subscription:
        """Subscribe, waiting out a bus outage for up to the queue timeout."""
        backoff = Backoff(0.1, 2.0)
        async with asyncio.timeout(self._limits.attach_timeout):
            while True:
                try:
                    return await self._bus.subscribe(topic)
                except VoxfleetError as e:
                    if not e.retryable:
                        raise
                await backoff.sleep()

    async def _put_job(self, room: _Room, resume: bool) -> str:
        job = RoomJob(
            room_id=room.call_id, profile=room.profile, resume=resume, enqueued_at=time.time()
        )
        return await self._queue.put(job)

    # -- agent -> caller ----------------------------------------------------------

    async def _to_caller(self, sock: CallSocket, down: Subscription, room: _Room) -> None:
        inbox = Inbox()
        while not sock.ended.is_set():
            message = await down.get(timeout=1.0)
            if message is not None:
                try:
                    decoded = decode(message)
                except MalformedMessage as e:
                    log.warning("malformed bus message dropped", call_id=room.call_id, error=str(e))
                    continue
                await self._from_agent(sock, room, inbox, decoded)
            await self._watch_agent(sock, room)

    async def _from_agent(
        self, sock: CallSocket, room: _Room, inbox: Inbox, decoded: Audio | Control | Numbered
    ) -> None:
        if isinstance(decoded, Numbered):
            if not inbox.accept(decoded.epoch, decoded.seq):
                if (after := inbox.replay_request()) is not None:
                    await self._ask_agent_replay(room, inbox.epoch, after)
                return
            room.heard_at = time.monotonic()
            inner = decoded.message
            if isinstance(inner, Audio):
                if sock.ready:
                    EDGE_FRAMES.labels("down", "audio").inc()
                    await sock.send_bytes(inner.pcm)
            elif inner.type == "attached":
                await self._attached(sock, room, inner)
            elif inner.type in CLIENT_TYPES and sock.ready:
                EDGE_FRAMES.labels("down", "json").inc()
                await sock.send_json({"type": inner.type, **inner.body})
            return
        if not isinstance(decoded, Control):
            return
        epoch = decoded.body.get("epoch")
        if not isinstance(epoch, int):
            return
        if decoded.type == "replay":  # the agent missed caller audio of our stream
            after = decoded.body.get("after")
            if isinstance(after, int):
                room.up.replay(epoch, after)
            return
        if epoch < inbox.epoch:
            return  # not from the agent serving the room now
        if decoded.type == "tick":
            seq = decoded.body.get("seq")
            if isinstance(seq, int):
                room.heard_at = time.monotonic()
                inbox.tick(epoch, seq)
                if (after := inbox.replay_request()) is not None:
                    await self._ask_agent_replay(room, inbox.epoch, after)
        elif decoded.type == "agent_failed":
            await sock.send_json(
                {"type": "error", "code": "agent_error", "message": "the agent failed"}
            )
            sock.end(EndReason.AGENT_ERROR)

    async def _attached(self, sock: CallSocket, room: _Room, attached: Control) -> None:
        """A new agent took the room (the first one, or after a failover or a
        handover): replay what it has not heard of the caller's audio."""
        body = attached.body
        replay_from, replay_epoch = body.get("replay_from"), body.get("replay_epoch")
        if isinstance(replay_from, int):
            # Frames of another (older) caller stream are not ours to replay: all of
            # what this socket buffered is new to the agent.
            mine = replay_epoch == room.up.epoch
            room.up.replay(room.up.epoch, replay_from if mine else 0)
        room.attached = True
        room.queued_told = False
        if sock.ready:
            return
        rate = body.get("sample_rate")
        queued_at = body.get("enqueued_at")
        wait_ms = (
            round((time.time() - queued_at) * 1000, 1)
            if isinstance(queued_at, (int, float))
            else 0.0
        )
        await sock.send_json(
            {
                "type": "ready",
                "call_id": sock.call_id,
                "wait_ms": wait_ms,
                "sample_rate": rate if isinstance(rate, int) and rate > 0 else DEFAULT_AGENT_RATE,
                "input_sample_rate": INPUT_RATE,
                "max_frame_ms": MAX_FRAME_MS,
            }
        )
        sock.ready = True

    async def _ask_agent_replay(self, room: _Room, epoch: int, after: int) -> None:
        with contextlib.suppress(VoxfleetError):  # asked again after a second if lost
            await self._bus.publish(
                room_up(room.call_id), encode_control("replay", epoch=epoch, after=after)
            )

    async def _watch_agent(self, sock: CallSocket, room: _Room) -> None:
        """At most about once a second: is some agent serving the room? When the
        one that did went silent and nobody holds the room's lease any more, it
        died with no other agent to resume the room: tell the caller it waits,
        queue the room again, and give up after the queue timeout."""
        now = time.monotonic()
        if room.attached and now - room.heard_at > AGENT_SILENT_S:
            try:
                holder = await self._directory.holder(room.call_id)
            except VoxfleetError:
                holder = "?"  # Redis is away; so is every agent's voice: wait for it
            room.heard_at = now  # look again in AGENT_SILENT_S
            if holder is None:
                log.warning("no agent serves the room", call_id=room.call_id)
                room.attached = False
                room.waiting_since = now
                room.job_checked_at = 0.0  # queue it again now
        if room.attached:
            return
        if not room.queued_told and now - room.waiting_since > QUEUED_AFTER_S:
            room.queued_told = True
            await sock.send_json({"type": "state", "state": "queued"})
        if now - room.waiting_since > self._limits.attach_timeout:
            sock.end(EndReason.NO_AGENT)
            return
        if now - room.job_checked_at > CHECK_JOB_EVERY_S:
            room.job_checked_at = now
            with contextlib.suppress(VoxfleetError):
                if room.job_id is None or not await self._queue.waiting(room.job_id):
                    room.job_id = await self._put_job(room, resume=sock.ready)

    # -- the end ------------------------------------------------------------------

    async def _finish(
        self, sock: CallSocket, room: _Room, reason: EndReason, pump: asyncio.Task[None]
    ) -> None:
        CALLS_ENDED.labels(reason.value).inc()
        log.info("call ended", call_id=sock.call_id, reason=reason.value)
        ended_at = time.time()
        room.up.push_control("hangup", reason=reason.value)
        # Recorded before the socket closes, so a client that reads the call right
        # after sees it ended; an outage is ridden out after the close.
        recorded = await self._record_end(sock.call_id, reason, ended_at)
        if sock.open and reason is not EndReason.CALLER_DISCONNECTED:
            await sock.send_json({"type": "ended", "reason": reason.value})
            code = _CLOSE_FOR_REASON.get(reason, CLOSE_NORMAL)
            with contextlib.suppress(RuntimeError, OSError):
                await sock.ws.close(code, reason.value)
        try:
            async with asyncio.timeout(FINISH_TIMEOUT_S):
                await self._forget_room(room, recorded, reason, ended_at)
        except TimeoutError:
            log.error("could not record call end everywhere", call_id=sock.call_id)
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump

    async def _forget_room(
        self, room: _Room, recorded: bool, reason: EndReason, ended_at: float
    ) -> None:
        """Every agent must learn the call is over: its job leaves the queue, the
        room gets its tombstone, the hangup goes out; and the store records the
        end. Each is retried while Redis or the database is away."""
        backoff = Backoff(0.1, 2.0)
        job_gone = room.job_id is None
        room_gone = False
        while True:
            try:
                if not job_gone and room.job_id is not None:
                    await self._queue.cancel(room.job_id)
                    job_gone = True
                if not room_gone:
                    await self._directory.end_room(room.call_id)
                    room_gone = True
                if not recorded:
                    recorded = await self._record_end(room.call_id, reason, ended_at)
                if recorded and await room.up.flush(timeout=1.0):
                    return
            except VoxfleetError as e:
                if not e.retryable:
                    raise
            await backoff.sleep()

    async def _record_end(self, call_id: str, reason: EndReason, at: float) -> bool:
        try:
            await self._store.end_call(call_id, reason, at)
        except VoxfleetError as e:
            if not e.retryable:
                log.error("could not record call end", call_id=call_id, error=e.code)
                return True  # nothing more to try
            return False
        return True
