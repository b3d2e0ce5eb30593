"""Holding a room: renew its lease three times per TTL while the room is
served, and tell the session when the room is not (or no longer surely) ours.

When Redis has been unreachable for longer than the lease lives, the session
is paused (self-fencing: another agent may hold the room by now) and the
renewals go on: once Redis answers, either the lease is still ours (or
re-asserted after Redis lost it) and the session resumes, with its state saved
again in case Redis lost that too; or the lease moved and the session leaves;
or the call is over and it ends."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from voxfleet.dispatch.base import FencedStateStore, RoomDirectory
from voxfleet.domain.conversation import ConversationState
from voxfleet.errors import LeaseLost, RoomEnded, VoxfleetError
from voxfleet.observability.logging import get_logger

log = get_logger(__name__)


class LeasedRoom(Protocol):
    """What the lease keeper needs of the session serving the room."""

    state: ConversationState
    paused: bool

    def stop(self) -> None: ...

    def end(self, reason: str) -> None: ...


async def keep_lease(directory: RoomDirectory, store: FencedStateStore, room: LeasedRoom) -> None:
    """Until the room is lost or over (then the session is told) or cancelled."""
    ttl = directory.lease_ttl
    last_ok = time.monotonic()
    failing = False
    lease = store.lease
    while True:
        await asyncio.sleep(ttl / 3)
        try:
            if not await directory.renew(store.lease):
                log.info("lease taken over", room=lease.room_id, agent_id=lease.agent_id)
                room.stop()
                return
            if failing:
                failing = False
                await store.save(room.state)
        except RoomEnded:
            room.end("room_ended")
            return
        except LeaseLost:
            room.stop()
            return
        except VoxfleetError as e:
            if not e.retryable:
                raise
            failing = True
            if time.monotonic() - last_ok > ttl * 0.9 and not room.paused:
                log.warning("lease unconfirmed, room paused", room=lease.room_id, error=e.code)
                room.paused = True
            continue
        last_ok = time.monotonic()
        if room.paused:
            log.info("lease confirmed, room resumed", room=lease.room_id, agent_id=lease.agent_id)
            room.paused = False
