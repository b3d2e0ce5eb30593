"""Crash failover: every agent watches for live rooms whose lease lapsed (their
agent died); the first to mark one re-queues it as a resume, and whichever
agent takes that job restores the conversation and carries on."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Container

from voxfleet.dispatch.base import RoomDirectory, RoomJob, RoomQueue
from voxfleet.errors import VoxfleetError
from voxfleet.observability.logging import get_logger
from voxfleet.observability.metrics import FAILOVERS

log = get_logger(__name__)
REAP_INTERVAL = 0.2


async def requeue_orphans(
    directory: RoomDirectory, queue: RoomQueue, serving: Container[str], agent_id: str
) -> int:
    """Re-queue, as resumes, the orphans nobody else re-queued; how many."""
    count = 0
    for room_id, profile in await directory.orphans():
        if room_id in serving or not await directory.mark_requeued(room_id):
            continue
        FAILOVERS.inc()
        log.info("orphaned room re-queued", room=room_id, agent_id=agent_id)
        await queue.put(
            RoomJob(room_id=room_id, profile=profile, resume=True, enqueued_at=time.time())
        )
        count += 1
    return count


async def reap_orphans(
    directory: RoomDirectory, queue: RoomQueue, serving: Container[str], agent_id: str
) -> None:
    """``requeue_orphans`` every REAP_INTERVAL, until cancelled."""
    while True:
        await asyncio.sleep(REAP_INTERVAL)
        try:
            await requeue_orphans(directory, queue, serving, agent_id)
        except VoxfleetError as e:
            log.warning("orphan scan failed", agent_id=agent_id, error=e.code)
