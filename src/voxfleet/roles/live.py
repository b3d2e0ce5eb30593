"""The monitor's live view, ``GET /api/live`` (WebSocket): a snapshot of live
rooms, agents and the scaling signal, then the changes and the agents' room
events, from this replica's one live feed (roles/live_hub.py).

Every replica reads the same Redis and hears the same events, so every
dashboard on every replica sees the same rooms, and a dashboard that
reconnects (to any replica) just gets a fresh snapshot. On drain (SIGTERM)
the socket closes with 1001 and the page reconnects. The page may also watch
one call's captions (roles/live_frames.py)."""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from voxfleet.aio import TaskSet
from voxfleet.observability.logging import get_logger
from voxfleet.roles.auth import is_admin_key
from voxfleet.roles.live_frames import CaptionWatch, Watch, parse_frame
from voxfleet.roles.live_hub import Outbox, dumps
from voxfleet.roles.monitor_auth import ANONYMOUS, Principal
from voxfleet.roles.runtime import Runtime
from voxfleet.roles.sessions import SESSION_COOKIE
from voxfleet.store.users import UserRole

log = get_logger(__name__)
router = APIRouter(prefix="/api")
CLOSE_GOING_AWAY = 1001
CLOSE_UNAUTHORIZED = 4401  # 4000 + the HTTP status it stands for
CLOSE_BAD_FRAME = 4400
CLOSE_INTERNAL = 1011
CLOSE_TIMEOUT_S = 1.0  # a stuck socket does not hold up the drain


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


class LiveSocket:
    """One dashboard's socket: the hub's feed, the captions it watches and the
    answers to its frames all go through its outbox, one sender."""

    def __init__(self, websocket: WebSocket, runtime: Runtime) -> None:
        self.websocket = websocket
        self.outbox = Outbox(websocket.send_text)
        self.captions = CaptionWatch(runtime.backends.bus, self.send)

    async def send(self, message: dict[str, object]) -> None:
        self.outbox.offer(dumps(message))

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
    hub = runtime.live_hub
    if hub is None:  # the live view is served only where the runtime plays the monitor
        await websocket.close(CLOSE_INTERNAL, "the live view is not served here")
        return
    log.info("live view opened", user=who.name)
    sock = LiveSocket(websocket, runtime)
    tasks = TaskSet("live")
    writer = tasks.spawn(sock.outbox.run(), "live-write")
    reader = tasks.spawn(sock.read(), "live-read")
    # Wakes at once on drain: the 1001 goes out before uvicorn closes what is
    # left (with 1012) as it shuts down.
    drain = tasks.spawn(runtime.drain_started.wait(), "live-drain")
    hub.join(sock.outbox)
    try:
        await asyncio.wait({writer, reader, drain}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        hub.leave(sock.outbox)
        await tasks.cancel_all()
        await sock.captions.close()
        log.info("live view closed", user=who.name)
    if drain.done() and not drain.cancelled():
        with contextlib.suppress(Exception):
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await websocket.close(CLOSE_GOING_AWAY, "monitor shutting down; reconnect")
    for task in (writer, reader):
        error = task.exception() if task.done() and not task.cancelled() else None
        if error is not None and not isinstance(error, WebSocketDisconnect):
            log.warning("live view failed", user=who.name, error=type(error).__name__)
