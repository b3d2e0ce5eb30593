"""Who may open a call's media socket, checked before anything else happens.

The call's first socket presents the media token of ``media_url`` (valid for a
short while, once: the call goes from created to active). After a drop the
same caller presents the resume token of its last ``ready`` (``resume_url``)
on any landing replica: it names the socket it takes over from, and the room
directory lets exactly one socket hold the call at a time, so a token replayed
by someone else, or a second socket, is refused."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from starlette.websockets import WebSocket

from voxfleet.dispatch.base import RoomDirectory
from voxfleet.domain.calls import CallStatus, is_call_id
from voxfleet.domain.events import CallEvent, EventKind
from voxfleet.errors import AuthError, RoomEnded, VoxfleetError
from voxfleet.observability.logging import get_logger
from voxfleet.store.history import CallHistory
from voxfleet.store.repository import CallRecord, CallStore
from voxfleet.transport.bus_link import new_epoch
from voxfleet.transport.tokens import MediaTokens, ResumeTokens

log = get_logger(__name__)
CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_CONFLICT = 4409


@dataclass(slots=True, frozen=True)
class Admitted:
    call: CallRecord
    socket: int  # this socket's epoch: it numbers the caller's stream too
    resumed: bool
    sample_rate: int | None  # the agent's, known when resuming
    previous: int | None = None  # the socket this one took over from


class Refused(Exception):
    """The socket is closed with ``code`` and ``reason`` (docs/protocol.md)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class SocketEntry:
    def __init__(
        self,
        store: CallStore,
        directory: RoomDirectory,
        media: MediaTokens,
        resume: ResumeTokens,
        history: CallHistory | None = None,  # where a resume is noted; None: nowhere
    ) -> None:
        self._store = store
        self._history = history
        self._directory = directory
        self._media = media
        self._resume = resume

    async def admit(self, ws: WebSocket, call_id: str) -> Admitted:
        """Raise Refused unless this socket may carry the call."""
        token = ws.query_params.get("token")
        resume = ws.query_params.get("resume")
        if resume:
            return await self._resumed(call_id, resume)
        if not token:
            raise Refused(
                CLOSE_BAD_REQUEST, "token: missing; use the media_url from POST /api/calls"
            )
        self._check(self._media, token, call_id)
        call = await self._call(call_id)
        if call.status is not CallStatus.CREATED or not await self._store.mark_active(
            call_id, time.time()
        ):
            raise Refused(CLOSE_CONFLICT, "call: already ended or already connected")
        socket = new_epoch()
        await self._claim(call_id, socket, None)
        return Admitted(call, socket, resumed=False, sample_rate=None)

    async def _resumed(self, call_id: str, token: str) -> Admitted:
        claims = self._check(self._resume, token, call_id)
        previous, rate = claims.get("s"), claims.get("r")
        if not isinstance(previous, int) or not isinstance(rate, int):
            raise Refused(CLOSE_UNAUTHORIZED, "resume: malformed token")
        call = await self._call(call_id)
        if call.status is CallStatus.ENDED:
            raise Refused(CLOSE_CONFLICT, "call: already ended")
        socket = new_epoch()
        await self._claim(call_id, socket, previous)
        await self._note_resume(call_id, previous)
        return Admitted(call, socket, resumed=True, sample_rate=rate, previous=previous)

    async def _note_resume(self, call_id: str, previous: int) -> None:
        """Kept for the monitor's inspector; a store blink never refuses a resume,
        and it waits for the store at most a moment (once per reconnect)."""
        if self._history is None:
            return
        event = CallEvent(call_id, time.time(), EventKind.RESUME, {"previous_socket": previous})
        try:
            async with asyncio.timeout(1.0):
                await self._history.add_event(event)
        except (VoxfleetError, TimeoutError) as e:
            log.warning("resume not recorded", call_id=call_id, error=type(e).__name__)

    def _check(
        self, tokens: MediaTokens | ResumeTokens, token: str, call_id: str
    ) -> dict[str, object]:
        try:
            return tokens.verify(token, call_id, time.time())
        except AuthError as e:
            code = CLOSE_FORBIDDEN if e.code == "token_foreign" else CLOSE_UNAUTHORIZED
            raise Refused(code, e.message) from e

    async def _call(self, call_id: str) -> CallRecord:
        call = await self._store.get_call(call_id) if is_call_id(call_id) else None
        if call is None:
            raise Refused(CLOSE_NOT_FOUND, "call: no such call")
        return call

    async def _claim(self, call_id: str, socket: int, replaces: int | None) -> None:
        try:
            if await self._directory.claim_socket(call_id, socket, replaces):
                return
        except RoomEnded as e:
            raise Refused(CLOSE_CONFLICT, "call: already ended") from e
        except VoxfleetError as e:
            if not e.retryable:
                raise
            if replaces is None:
                return  # Redis is away: the first socket's claim is made on its next check
            raise Refused(CLOSE_CONFLICT, "call: cannot resume now; try again") from e
        raise Refused(CLOSE_CONFLICT, "call: another connection holds this call")
