"""Webhook event ids already taken, so a replayed webhook is refused: in
Redis when the landing has it (any replica sees what another took), in
memory for `voxfleet up`. An id is remembered for longer than a webhook may
be old, so a replay is either remembered or refused as stale."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod

from redis.asyncio import Redis

from voxfleet.dispatch.redis.keys import wrapped

KEY_PREFIX = "vf:livekit:webhook:"


class SeenEvents(ABC):
    @abstractmethod
    async def first_time(self, event_id: str, keep_seconds: int) -> bool:
        """Record ``event_id``; True unless it was recorded within ``keep_seconds``."""

    @abstractmethod
    async def forget(self, event_id: str) -> None:
        """Taking the event failed (the store was away): LiveKit's retry of it
        must not be refused as a replay."""


class InMemorySeenEvents(SeenEvents):
    def __init__(self) -> None:
        self._until: dict[str, float] = {}  # event id -> forget after

    async def first_time(self, event_id: str, keep_seconds: int) -> bool:
        now = time.monotonic()
        if len(self._until) > 1024:  # forget the expired ones now and then
            self._until = {k: t for k, t in self._until.items() if t > now}
        if self._until.get(event_id, 0.0) > now:
            return False
        self._until[event_id] = now + keep_seconds
        return True

    async def forget(self, event_id: str) -> None:
        self._until.pop(event_id, None)


class RedisSeenEvents(SeenEvents):
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    @wrapped
    async def first_time(self, event_id: str, keep_seconds: int) -> bool:
        # SET NX: of two replicas taking the same event at once, one wins.
        return bool(await self._redis.set(KEY_PREFIX + event_id, b"1", nx=True, ex=keep_seconds))

    @wrapped
    async def forget(self, event_id: str) -> None:
        await self._redis.delete(KEY_PREFIX + event_id)


def seen_events(redis: Redis | None) -> SeenEvents:
    return InMemorySeenEvents() if redis is None else RedisSeenEvents(redis)
