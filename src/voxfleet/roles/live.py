"""The monitor's live view, ``GET /api/live`` (WebSocket): a snapshot of live
rooms, agents and the scaling signal, then the changes, as the monitor sees
them by polling its backends every ``POLL_SECONDS``.

Polling and diffing rather than listening for events: every replica reads the
same Redis, so every dashboard on every replica sees the same rooms, and a
dashboard that reconnects (to any replica) just gets a fresh snapshot. On
drain (SIGTERM) the socket closes with 1001 and the page reconnects. The
page may also watch one call's captions (roles/live_frames.py)."""

from __future__ import annotations

import asyncio
import contextlib
import time

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import BaseModel

from voxfleet.aio import TaskSet
from voxfleet.dispatch.base import AgentInfo
from voxfleet.dispatch.scaling import ScalingSignal, scaling_signal
from voxfleet.errors import Unavailable
from voxfleet.observability.logging import get_logger
from voxfleet.roles.auth import is_admin_key
from voxfleet.roles.live_frames import CaptionWatch, Watch, parse_frame
from voxfleet.roles.monitor_auth import ANONYMOUS, Principal
from voxfleet.roles.runtime import Runtime
from voxfleet.roles.sessions import SESSION_COOKIE
from voxfleet.store import CallStore, session_factory
from voxfleet.store.history import CallHistory
from voxfleet.store.users import UserRole

log = get_logger(__name__)
router = APIRouter(prefix="/api")
POLL_SECONDS = 1.0
CLOSE_GOING_AWAY = 1001
CLOSE_UNAUTHORIZED = 4401  # 4000 + the HTTP status it stands for
CLOSE_BAD_FRAME = 4400


class LiveRoom(BaseModel):
    room_id: str
    agent_id: str | None
    state: str = "queued"  # queued (no agent holds it) or served
    profile: str | None = None
    started_at: float | None = None  # epoch seconds; the page counts the duration
    last_utterance: str | None = None  # the caller's last stored words
    failovers: int = 0  # rooms taken over after their agent died, so far


class Snapshot(BaseModel):
    rooms: dict[str, LiveRoom]
    agents: dict[str, AgentInfo]
    scaling: ScalingSignal


async def who_connects(websocket: WebSocket, runtime: Runtime) -> Principal | str:
    """The monitor user behind a socket (session cookie or admin key), or why
    it is refused. Browsers send the cookie; automation the key."""
    scheme, _, key = websocket.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and key.strip():
        if is_admin_key(runtime.settings, key.strip()):
            return Principal("admin-api-key", UserRole.ADMIN, "admin_key")
        return "authorization: not the admin API key"
    session_id = websocket.cookies.get(SESSION_COOKIE)
    if not session_id or runtime.sessions is None:
        return ANONYMOUS
    session = await runtime.sessions.get(session_id)
    if session is None:
        return "session: expired or signed out; sign in again with POST /api/session"
    return Principal(session.user, session.role, "session", session_id, session.csrf)


class RoomDetails:
    """Profile and start time of each live room, read from the store once per
    room (they never change while it lives); the caller's last words and the
    failovers so far, read for all live rooms at once on each poll."""

    def __init__(self, store: CallStore | None, history: CallHistory | None = None) -> None:
        self._store = store
        self._history = history
        self._known: dict[str, tuple[str | None, float | None]] = {}

    async def facts(self, room_ids: list[str]) -> dict[str, tuple[str | None, int]]:
        if self._history is None:
            return {}
        try:
            return await self._history.live_facts(room_ids)
        except Unavailable as e:  # the store is restarting: the rest of the view goes on
            log.warning("live view: room facts unavailable", error=str(e))
            return {}

    async def room(self, room_id: str, agent_id: str) -> LiveRoom:
        if room_id not in self._known:
            call = await self._store.get_call(room_id) if self._store is not None else None
            self._known[room_id] = (
                (call.profile, call.started_at or call.created_at) if call else (None, None)
            )
        profile, started = self._known[room_id]
        return LiveRoom(
            room_id=room_id,
            agent_id=agent_id or None,
            state="served" if agent_id else "queued",
            profile=profile,
            started_at=started,
        )

    def forget_all_but(self, live: set[str]) -> None:
        self._known = {k: v for k, v in self._known.items() if k in live}


async def snapshot(runtime: Runtime, details: RoomDetails) -> Snapshot:
    b = runtime.backends
    served = await b.directory.rooms()
    details.forget_all_but(set(served))
    rooms = {r: await details.room(r, a) for r, a in sorted(served.items())}
    for room_id, (words, failovers) in (await details.facts(list(rooms))).items():
        room = rooms[room_id]
        room.last_utterance, room.failovers = words, failovers
    agents = {a.agent_id: a for a in sorted(await b.registry.agents(), key=lambda a: a.agent_id)}
    scaling = await scaling_signal(b.registry, b.directory, b.queue, runtime.settings)
    return Snapshot(rooms=rooms, agents=agents, scaling=scaling)


def changes(before: Snapshot, after: Snapshot) -> dict[str, object] | None:
    """What changed from ``before`` to ``after``, as one message; None if nothing."""
    out: dict[str, object] = {}
    for kind in ("rooms", "agents"):
        old: dict[str, BaseModel] = getattr(before, kind)
        new: dict[str, BaseModel] = getattr(after, kind)
        upsert = [v.model_dump(mode="json") for k, v in new.items() if old.get(k) != v]
        removed = sorted(set(old) - set(new))
        if upsert or removed:
            out[kind] = {"upsert": upsert, "remove": removed}
    if before.scaling != after.scaling:
        out["scaling"] = after.scaling.model_dump(mode="json")
    if not out:
        return None
    return {"type": "changes", "at": time.time(), **out}


def full(snap: Snapshot) -> dict[str, object]:
    return {
        "type": "snapshot",
        "at": time.time(),
        "rooms": [r.model_dump(mode="json") for r in snap.rooms.values()],
        "agents": [a.model_dump(mode="json") for a in snap.agents.values()],
        "scaling": snap.scaling.model_dump(mode="json"),
    }


class LiveSocket:
    """One dashboard's socket: the feed and the captions it watches share it,
    so sends take turns."""

    def __init__(self, websocket: WebSocket, runtime: Runtime) -> None:
        self.websocket = websocket
        self.runtime = runtime
        self._sending = asyncio.Lock()
        self.captions = CaptionWatch(runtime.backends.bus, self.send)

    async def send(self, message: dict[str, object]) -> None:
        async with self._sending:
            await self.websocket.send_json(message)

    async def feed(self) -> None:
        runtime = self.runtime
        history = CallHistory(session_factory(runtime.engine)) if runtime.engine else None
        details = RoomDetails(runtime.store, history)
        last = await snapshot(runtime, details)
        await self.send(full(last))
        while not runtime.stopping:
            # Wakes at once on drain: the 1001 goes out before uvicorn closes
            # what is left (with 1012) as it shuts down.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_SECONDS):
                    await runtime.drain_started.wait()
            if runtime.stopping:
                break
            now = await snapshot(runtime, details)
            diff = changes(last, now)
            if diff is not None:
                await self.send(diff)
            last = now
        async with self._sending:
            await self.websocket.close(CLOSE_GOING_AWAY, "monitor shutting down; reconnect")

    async def read(self) -> None:
        """Pings and watch requests; anything else gets an error naming what is wrong."""
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            frame = parse_frame(message.get("text"))
            if isinstance(frame, str):
                await self.send({"type": "error", "code": "invalid_frame", "message": frame})
            elif isinstance(frame, Watch):
                await self.captions.watch(frame.call_id)
            else:
                await self.send({"type": "pong"})


@router.websocket("/live")
async def live(websocket: WebSocket) -> None:
    runtime: Runtime = websocket.app.state.runtime
    await websocket.accept()
    who = await who_connects(websocket, runtime)
    if isinstance(who, str):
        await websocket.close(CLOSE_UNAUTHORIZED, who[:120])
        return
    log.info("live view opened", user=who.name)
    sock = LiveSocket(websocket, runtime)
    tasks = TaskSet("live")
    feed = tasks.spawn(sock.feed(), "live-feed")
    reader = tasks.spawn(sock.read(), "live-read")
    try:
        await asyncio.wait({feed, reader}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        await tasks.cancel_all()
        await sock.captions.close()
        log.info("live view closed", user=who.name)
    for task in (feed, reader):
        error = task.exception() if task.done() and not task.cancelled() else None
        if error is not None and not isinstance(error, WebSocketDisconnect):
            log.warning("live view failed", user=who.name, error=type(error).__name__)
