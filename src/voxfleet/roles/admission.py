"""Admission of new calls on the landing: a per-client rate limit (429) and a
cap on rooms waiting for an agent (503), both with ``Retry-After``.

The rate limit is the ``limits`` library's sliding-window counter, in Redis
when the process has one (so every landing replica counts the same client
together) and in memory otherwise. Both checks fail open: when Redis cannot
answer within a fraction of a second the call is let through, counted in
``voxfleet_rate_limit_errors_total`` and logged once per outage. A limiter
must not be what takes call creation down."""

from __future__ import annotations

import asyncio
import math
import time

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError
from redis.asyncio import ConnectionPool
from redis.exceptions import RedisError

from voxfleet.dispatch.base import RoomQueue
from voxfleet.errors import QueueFull, RateLimited, VoxfleetError
from voxfleet.observability.logging import get_logger
from voxfleet.observability.metrics import CALLS_REFUSED, RATE_LIMIT_ERRORS
from voxfleet.settings import Settings

log = get_logger(__name__)

CHECK_TIMEOUT = 0.5  # seconds a check may take before it fails open
QUEUE_RETRY_AFTER = 5  # seconds; rooms leave the queue as fast as agents free up
KEY_PREFIX = "vf:limit"
LIMIT_UNAVAILABLE = (StorageError, RedisError, VoxfleetError, OSError, TimeoutError)


def limit_storage(settings: Settings) -> tuple[Storage, ConnectionPool | None]:
    """Where ``limits`` counts: Redis when the process has it (every replica counts
    together, with a short timeout so a check can fail open), memory otherwise."""
    if settings.redis_url is None:
        return MemoryStorage(), None
    url = settings.redis_url.get_secret_value()
    password = settings.redis_password
    pool = ConnectionPool.from_url(
        url,
        password=password.get_secret_value() if password else None,
        socket_timeout=CHECK_TIMEOUT,
        socket_connect_timeout=CHECK_TIMEOUT,
    )
    storage = RedisStorage(
        f"async+{url}",
        implementation="redispy",
        wrap_exceptions=True,
        key_prefix=KEY_PREFIX,
        connection_pool=pool,  # type: ignore[arg-type]
    )
    return storage, pool


async def close_storage(storage: Storage, pool: ConnectionPool | None) -> None:
    if isinstance(storage, MemoryStorage) and storage.timer is not None:
        storage.timer.cancel()
    if pool is not None:
        await pool.aclose()


class CallAdmission:
    def __init__(self, settings: Settings, queue: RoomQueue) -> None:
        rate = settings.call_rate_limit
        self.limits: list[RateLimitItem] = [] if rate == "off" else parse_many(rate)
        self._queue = queue
        self._max_queued = settings.max_queued_rooms
        storage, self._pool = limit_storage(settings)
        self._storage = storage
        self._limiter = SlidingWindowCounterRateLimiter(storage)
        self._failing: set[str] = set()

    async def check_rate(self, client: str) -> None:
        """Raise RateLimited when ``client`` (an address) created too many calls."""
        for item in self.limits:
            try:
                async with asyncio.timeout(CHECK_TIMEOUT):
                    if await self._limiter.hit(item, "calls", client):
                        continue
                    reset_at = (await self._limiter.get_window_stats(item, "calls", client))[0]
            except LIMIT_UNAVAILABLE as e:
                self._unavailable("rate", e)
                return
            self._recovered("rate")
            CALLS_REFUSED.labels("rate_limited").inc()
            retry_after = max(1, math.ceil(reset_at - time.time()))
            log.info("call refused", reason="rate_limited", limit=str(item))
            raise RateLimited(
                f"calls: more than {item} from this client; try again in {retry_after} s",
                retry_after=retry_after,
            )
        self._recovered("rate")

    async def check_queue(self) -> None:
        """Raise QueueFull when ``max_queued_rooms`` rooms already wait for an agent."""
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                depth = await self._queue.depth()
        except LIMIT_UNAVAILABLE as e:
            self._unavailable("queue", e)
            return
        self._recovered("queue")
        if depth >= self._max_queued:
            CALLS_REFUSED.labels("queue_full").inc()
            log.warning("call refused", reason="queue_full", queued=depth)
            raise QueueFull(
                f"queue: {depth} calls are waiting for an agent; "
                f"try again in {QUEUE_RETRY_AFTER} s",
                retry_after=QUEUE_RETRY_AFTER,
            )

    def _unavailable(self, check: str, error: BaseException) -> None:
        RATE_LIMIT_ERRORS.labels(check).inc()
        if check not in self._failing:
            self._failing.add(check)
            log.warning("admission check failing open", check=check, error=repr(error))

    def _recovered(self, check: str) -> None:
        if check in self._failing:
            self._failing.discard(check)
            log.info("admission check recovered", check=check)

    async def close(self) -> None:
        await close_storage(self._storage, self._pool)
