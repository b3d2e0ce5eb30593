"""Handing a room over on drain (SIGTERM, scale-down, rolling update),
make-before-break: at the room's next turn boundary the session stops taking
input (the edge keeps the caller's audio), its state is saved and the room is
offered with the lease's current fence. Another agent takes the lease *from
that fence* and attaches; this session notices its lease moved and leaves
without hanging up. If nobody takes the room within HANDOVER_WAIT (no
capacity anywhere), a fresh fence voids the offer and the session serves on;
the offer is made again later."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

from voxfleet.dispatch.base import FencedStateStore, RoomDirectory, RoomJob, RoomQueue
from voxfleet.errors import LeaseLost, RoomEnded, VoxfleetError
from voxfleet.observability.logging import get_logger

log = get_logger(__name__)
HANDOVER_WAIT = 3.0  # an offered room not taken within this stays with us


class Handable(Protocol):
    """What a handover needs of the session serving the room."""

    async def freeze_when_idle(self) -> None: ...

    def unfreeze(self) -> None: ...

    async def save(self) -> None: ...

    def stop(self) -> None: ...


async def hand_over(
    session: Handable,
    store: FencedStateStore,
    profile: str,
    queue: RoomQueue,
    directory: RoomDirectory,
    still_here: Callable[[], bool],
) -> None:
    """Offer the room until another agent has it (``still_here()`` turns false)."""
    try:
        while still_here():
            await _offer(session, store, profile, queue, directory, still_here)
    except (LeaseLost, RoomEnded):
        return  # the lease keeper has seen it too and stopped the session


async def _offer(
    session: Handable,
    store: FencedStateStore,
    profile: str,
    queue: RoomQueue,
    directory: RoomDirectory,
    still_here: Callable[[], bool],
) -> None:
    lease = store.lease
    await session.freeze_when_idle()
    try:
        await session.save()
        job = RoomJob(
            room_id=lease.room_id,
            profile=profile,
            resume=True,
            handover_from=lease.agent_id,
            handover_fence=lease.fence,
            enqueued_at=time.time(),
        )
        await queue.put(job)
    except VoxfleetError as e:
        if not e.retryable:
            raise
        session.unfreeze()  # Redis blinked: serve on, offer again shortly
        await asyncio.sleep(HANDOVER_WAIT / 3)
        return
    deadline = time.monotonic() + HANDOVER_WAIT
    while still_here() and time.monotonic() < deadline:  # noqa: ASYNC110 - bounded poll
        await asyncio.sleep(0.02)
    if not still_here():
        return
    # Nobody took it: a fresh fence voids the offer, and we keep serving.
    while True:
        try:
            fresh = await directory.acquire(lease.room_id, lease.agent_id, profile)
            break
        except VoxfleetError as e:
            if not e.retryable:
                raise
            await asyncio.sleep(0.2)
    if fresh is None:
        session.stop()
        return
    store.lease = fresh
    session.unfreeze()
    log.info("handover not taken, room kept", room=lease.room_id, agent_id=lease.agent_id)
    await asyncio.sleep(HANDOVER_WAIT)
