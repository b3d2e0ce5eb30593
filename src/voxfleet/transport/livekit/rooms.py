"""The landing's part in a LiveKit call's life: queue the room for an agent
when the call is created, and end it when LiveKit says the caller left.

With LiveKit the caller's media never passes the landing, so there is no
media edge to queue the room or to notice a hang-up: the call's room job is
queued at creation, and the end arrives as a webhook. The call ends as the
edge ends one: the reason recorded, the room tombstoned in the directory (no
agent takes, keeps or saves it again) and a hang-up on the room's ``up``
stream, so the serving agent leaves the LiveKit room."""

from __future__ import annotations

import asyncio
import time

from voxfleet.aio import Backoff
from voxfleet.bus.base import room_up
from voxfleet.dispatch.base import RoomJob
from voxfleet.domain.calls import EndReason, is_call_id
from voxfleet.errors import VoxfleetError
from voxfleet.messages.room import Hangup, encode, encode_numbered
from voxfleet.observability.logging import get_logger
from voxfleet.observability.metrics import CALLS_ENDED
from voxfleet.store.repository import CallStore
from voxfleet.transport.bus_link import new_epoch
from voxfleet.transport.edge_link import Dispatch

log = get_logger(__name__)
FINISH_TIMEOUT_S = 30.0  # how long the landing keeps trying to tell the agents


class LiveKitRooms:
    def __init__(self, dispatch: Dispatch, store: CallStore) -> None:
        self._dispatch = dispatch
        self._store = store

    async def open(self, call_id: str, profile: str) -> None:
        """Queue the call's room for an agent, as the media edge does when a
        caller's socket opens."""
        job = RoomJob(room_id=call_id, profile=profile, enqueued_at=time.time())
        await self._dispatch.queue.put(job)

    async def joined(self, call_id: str) -> bool:
        """The caller joined the room: the call is active (so it is not swept
        as never connected). False when it was not waiting for its caller."""
        if not is_call_id(call_id):
            return False
        return await self._store.mark_active(call_id, time.time())

    async def end(self, call_id: str, reason: EndReason) -> bool:
        """End a live call; False (nothing done) for a room that is no live call."""
        if not is_call_id(call_id):
            return False
        # One conditional update: no such call, or one someone else (its agent, an
        # earlier webhook) ended first, changes nothing.
        if not await self._store.end_call(call_id, reason, time.time()):
            return False
        CALLS_ENDED.labels(reason.value).inc()
        log.info("call ended", call_id=call_id, reason=reason.value)
        try:
            async with asyncio.timeout(FINISH_TIMEOUT_S):
                await self._tell_agents(call_id, reason)
        except TimeoutError:
            log.error("could not tell the agents a call ended", call_id=call_id)
        return True

    async def _tell_agents(self, call_id: str, reason: EndReason) -> None:
        # A fresh epoch: the agent's inbox takes a newer producer from its first
        # message, so this one-message stream needs no replay.
        hangup = encode_numbered(new_epoch(), 1, encode(Hangup(reason=reason.value)))
        backoff = Backoff(0.1, 2.0)
        room_gone = False
        while True:
            try:
                if not room_gone:
                    await self._dispatch.directory.end_room(call_id)
                    room_gone = True
                await self._dispatch.bus.publish(room_up(call_id), hangup)
                return
            except VoxfleetError as e:
                if not e.retryable:
                    raise
            await backoff.sleep()
