"""The shared backends of a process: bus, room queue, room directory and agent
registry. Redis when ``VOXFLEET_REDIS_URL`` is set, in-process otherwise."""

from __future__ import annotations

from dataclasses import dataclass, field

from redis.asyncio import Redis

from voxfleet.bus.base import Bus
from voxfleet.bus.memory import InProcessBus
from voxfleet.dispatch.base import AgentRegistry, RoomDirectory, RoomQueue
from voxfleet.dispatch.memory import (
    InProcessAgentRegistry,
    InProcessRoomDirectory,
    InProcessRoomQueue,
)
from voxfleet.roles.live_events import LiveEvents
from voxfleet.settings import Settings


@dataclass(slots=True)
class Backends:
    bus: Bus
    queue: RoomQueue
    directory: RoomDirectory
    registry: AgentRegistry
    redis: Redis | None = None
    events: LiveEvents = field(init=False)  # what agents tell the monitors' live view

    def __post_init__(self) -> None:
        self.events = LiveEvents(self.bus)

    @property
    def distributed(self) -> bool:
        return self.redis is not None

    async def ping(self) -> bool:
        if self.redis is None:
            return True
        try:
            return bool(await self.redis.ping())
        except Exception:
            return False

    async def close(self) -> None:
        await self.events.close()
        await self.bus.close()
        if self.redis is not None:
            await self.redis.aclose()


def build_backends(settings: Settings) -> Backends:
    if settings.redis_url is None:
        return Backends(
            InProcessBus(),
            InProcessRoomQueue(),
            InProcessRoomDirectory(settings.lease_ttl_seconds),
            InProcessAgentRegistry(),
        )
    from voxfleet.bus.redis import RedisBus
    from voxfleet.dispatch.redis import RedisAgentRegistry, RedisRoomDirectory, RedisRoomQueue

    url = settings.redis_url.get_secret_value()
    password = settings.redis_password.get_secret_value() if settings.redis_password else None
    redis = Redis.from_url(
        url,
        password=password,
        socket_timeout=5.0,
        socket_connect_timeout=2.0,
        retry_on_timeout=True,
        health_check_interval=10,
    )
    return Backends(
        RedisBus(url, password=password),
        RedisRoomQueue(redis),
        RedisRoomDirectory(redis, settings.lease_ttl_seconds),
        RedisAgentRegistry(redis),
        redis=redis,
    )
