"""The agent registry on Redis: ``vf:agents`` (set) and ``vf:agent:{id}``
(JSON, expiring after three missed heartbeats)."""

from __future__ import annotations

import json
import time

from redis.asyncio import Redis

from voxfleet.dispatch.base import AgentInfo, AgentRegistry
from voxfleet.dispatch.redis.keys import Reply, text, wrapped

AGENTS = "vf:agents"


class RedisAgentRegistry(AgentRegistry):
    def __init__(self, redis: Redis, heartbeat_interval: float = 1.0) -> None:
        self._redis = redis
        self.heartbeat_interval = heartbeat_interval

    @wrapped
    async def heartbeat(self, info: AgentInfo) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(
                f"vf:agent:{info.agent_id}",
                info.model_dump_json(),
                px=int(self.heartbeat_interval * 3000),
            )
            pipe.sadd(AGENTS, info.agent_id)
            await pipe.execute()

    @wrapped
    async def agents(self) -> list[AgentInfo]:
        members: set[Reply] = await self._redis.smembers(AGENTS)
        ids = [text(a) for a in members]
        if not ids:
            return []
        values: list[Reply | None] = await self._redis.mget([f"vf:agent:{a}" for a in ids])
        live: list[AgentInfo] = []
        gone: list[str] = []
        for agent_id, raw in zip(ids, values, strict=True):
            if raw is None:
                gone.append(agent_id)
            else:
                live.append(AgentInfo.model_validate(json.loads(raw)))
        if gone:
            await self._redis.srem(AGENTS, *gone)
        horizon = time.time() - 3 * self.heartbeat_interval
        return [a for a in live if a.seen >= horizon]

    @wrapped
    async def remove(self, agent_id: str) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.delete(f"vf:agent:{agent_id}")
            pipe.srem(AGENTS, agent_id)
            await pipe.execute()
