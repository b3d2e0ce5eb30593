"""The room queue on Redis: a Stream (``vf:queue``) with a consumer group
(``agents``). A job taken by an agent that died before finishing it is
reclaimed by another (XAUTOCLAIM after CLAIM_IDLE_MS)."""

from __future__ import annotations

from typing import cast

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from voxfleet.dispatch.base import RoomJob, RoomQueue
from voxfleet.dispatch.redis.keys import Reply, StreamEntry, text, wrapped

QUEUE = "vf:queue"
GROUP = "agents"
CLAIM_IDLE_MS = 5000  # a job taken but not done for this long goes to another agent


class RedisRoomQueue(RoomQueue):
    def __init__(self, redis: Redis, claim_idle_ms: int = CLAIM_IDLE_MS) -> None:
        self._redis = redis
        self._group_ready = False
        self._claim_idle_ms = claim_idle_ms

    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            await self._redis.xgroup_create(QUEUE, GROUP, id="0", mkstream=True)
        except ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise
        self._group_ready = True

    @wrapped
    async def put(self, job: RoomJob) -> str:
        entry_id = await self._redis.xadd(QUEUE, {"job": job.model_dump_json(exclude={"job_id"})})
        return text(entry_id)

    @wrapped
    async def take(self, consumer: str, timeout: float | None = None) -> RoomJob | None:
        await self._ensure_group()
        try:
            # First, a job another agent took but never finished (it died).
            claimed = cast(
                tuple[Reply, list[StreamEntry]] | None,
                await self._redis.xautoclaim(
                    QUEUE,
                    GROUP,
                    consumer,
                    min_idle_time=self._claim_idle_ms,
                    start_id="0-0",
                    count=1,
                ),
            )
            entries = claimed[1] if claimed else []
            if not entries:
                block = None if timeout is None else max(1, int(timeout * 1000))
                reply = cast(
                    list[tuple[Reply, list[StreamEntry]]],
                    await self._redis.xreadgroup(
                        GROUP, consumer, {QUEUE: ">"}, count=1, block=block or 0
                    ),
                )
                entries = reply[0][1] if reply else []
        except ResponseError as e:
            if "NOGROUP" in str(e):  # Redis lost the stream (restart): recreate
                self._group_ready = False
                return None
            raise
        for entry_id, fields in entries:
            raw = fields.get(b"job") or fields.get("job")
            if raw is None:
                await self._ack(entry_id)
                continue
            job = RoomJob.model_validate_json(raw)
            job.job_id = text(entry_id)
            return job
        return None

    async def _ack(self, entry_id: Reply) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xack(QUEUE, GROUP, entry_id)
            pipe.xdel(QUEUE, entry_id)
            await pipe.execute()

    @wrapped
    async def done(self, job: RoomJob) -> None:
        if job.job_id:
            await self._ack(job.job_id)

    @wrapped
    async def cancel(self, job_id: str) -> None:
        await self._ack(job_id)

    @wrapped
    async def waiting(self, job_id: str) -> bool:
        return bool(await self._redis.xrange(QUEUE, job_id, job_id, count=1))

    @wrapped
    async def depth(self) -> int:
        return int(await self._redis.xlen(QUEUE))
