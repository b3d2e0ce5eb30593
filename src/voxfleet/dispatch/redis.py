"""Dispatch on Redis: the room queue (a Stream with a consumer group), the room
directory (leases with fencing, conversation state, the set of live rooms) and
the agent registry. Lease and state writes are Lua scripts, so "check the fence,
then write" is atomic.

Keys: ``vf:queue`` (stream, group ``agents``), ``vf:rooms`` (hash room ->
profile), ``vf:room:{id}:lease`` ("agent|fence", PX ttl), ``:fence`` (counter),
``:state`` (JSON), ``:requeue`` (NX marker), ``:ended`` (tombstone of a call
that is over), ``vf:agents`` (set) and ``vf:agent:{id}`` (JSON, PX 3 heartbeats).

If Redis restarts empty (or a failover loses recent writes), an agent's next
renew or save finds its lease gone and no newer fence, and re-asserts both:
live rooms survive a Redis restart."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from voxfleet.aio import closed_transport
from voxfleet.dispatch.base import (
    TOMBSTONE_SECONDS,
    AgentInfo,
    AgentRegistry,
    Lease,
    LeaseLost,
    RoomDirectory,
    RoomEnded,
    RoomJob,
    RoomQueue,
)
from voxfleet.domain.conversation import ConversationState
from voxfleet.errors import DispatchUnavailable

P = ParamSpec("P")
R = TypeVar("R")


def _wrapped(
    method: Callable[P, Coroutine[Any, Any, R]],
) -> Callable[P, Coroutine[Any, Any, R]]:
    """Redis errors leave this module as DispatchUnavailable (retryable), and
    so does uvloop's RuntimeError for a write on a connection Redis closed (an
    agent's claim loop died of it when Redis restarted)."""

    @functools.wraps(method)
    async def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await method(*args, **kwargs)
        except (RedisError, OSError) as e:
            raise DispatchUnavailable(f"redis: {e}") from e
        except RuntimeError as e:
            if not closed_transport(e):
                raise
            raise DispatchUnavailable(f"redis: connection closed: {e}") from e

    return call


QUEUE = "vf:queue"
GROUP = "agents"
ROOMS = "vf:rooms"
AGENTS = "vf:agents"
STATE_TTL_S = 6 * 3600
CLAIM_IDLE_MS = 5000  # a job taken but not done for this long goes to another agent


def _room(room_id: str, part: str) -> str:
    return f"vf:room:{room_id}:{part}"


# Every script first checks the room's tombstone (KEYS[4]): -1 means the call is over.
_ENDED = """
if redis.call('EXISTS', KEYS[4]) == 1 then return -1 end
"""

# Is the lease ours to (re-)assert? Yes when it holds our value; or when it is gone
# (expired, or Redis lost it in a restart) and nobody took a newer fence since; or
# when it names us with an older fence (a failover that lost our latest writes).
# KEYS: lease, fence. ARGV[1]: our value "agent|fence", ARGV[2]: ttl_ms, ARGV[3]: our fence.
_OURS = """
local function ours()
  local cur = redis.call('GET', KEYS[1])
  if cur == ARGV[1] then return 1 end
  local newest = tonumber(redis.call('GET', KEYS[2]) or '0')
  if newest > tonumber(ARGV[3]) then return 0 end
  if cur then
    local holder, fence = string.match(cur, '^(.*)|(%d+)$')
    local me = string.match(ARGV[1], '^(.*)|%d+$')
    if holder ~= me or tonumber(fence) > tonumber(ARGV[3]) then return 0 end
  end
  redis.call('SET', KEYS[2], ARGV[3])
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
end
"""

# KEYS: lease, fence, rooms, ended. ARGV: room, agent, takeover_fence, ttl_ms, profile
_ACQUIRE = (
    _ENDED
    + """
local cur = redis.call('GET', KEYS[1])
if cur then
  local holder, fence = string.match(cur, '^(.*)|(%d+)$')
  if holder ~= ARGV[2] and fence ~= ARGV[3] then return false end
end
local fence = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[2] .. '|' .. fence, 'PX', ARGV[4])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[5])
return fence
"""
)

# KEYS: lease, fence, rooms, ended. ARGV: value, ttl_ms, fence, room, profile
# 1: renewed; 2: re-asserted; 0: the lease is not ours.
_RENEW = (
    _ENDED
    + _OURS
    + """
local result = ours()
if result == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if result > 0 then redis.call('HSET', KEYS[3], ARGV[4], ARGV[5]) end
return result
"""
)

# KEYS: lease, fence, state, ended. ARGV: value, ttl_ms, fence, json, state_ttl_s
_SAVE = (
    _ENDED
    + _OURS
    + """
if ours() == 0 then return 0 end
redis.call('SET', KEYS[3], ARGV[4], 'EX', ARGV[5])
return 1
"""
)

# KEYS: lease. ARGV: value
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _text(value: Any) -> str:
    """Redis replies are bytes or str depending on the client's decoding."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _lease_value(lease: Lease) -> str:
    return f"{lease.agent_id}|{lease.fence}"


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

    @_wrapped
    async def put(self, job: RoomJob) -> str:
        entry_id = await self._redis.xadd(QUEUE, {"job": job.model_dump_json(exclude={"job_id"})})
        return _text(entry_id)

    @_wrapped
    async def take(self, consumer: str, timeout: float | None = None) -> RoomJob | None:
        await self._ensure_group()
        try:
            # First, a job another agent took but never finished (it died).
            claimed: Any = await self._redis.xautoclaim(
                QUEUE, GROUP, consumer, min_idle_time=self._claim_idle_ms, start_id="0-0", count=1
            )
            entries: list[Any] = claimed[1] if claimed else []
            if not entries:
                block = None if timeout is None else max(1, int(timeout * 1000))
                reply: Any = await self._redis.xreadgroup(
                    GROUP, consumer, {QUEUE: ">"}, count=1, block=block or 0
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
            job.job_id = _text(entry_id)
            return job
        return None

    async def _ack(self, entry_id: Any) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xack(QUEUE, GROUP, entry_id)
            pipe.xdel(QUEUE, entry_id)
            await pipe.execute()

    @_wrapped
    async def done(self, job: RoomJob) -> None:
        if job.job_id:
            await self._ack(job.job_id)

    @_wrapped
    async def cancel(self, job_id: str) -> None:
        await self._ack(job_id)

    @_wrapped
    async def waiting(self, job_id: str) -> bool:
        return bool(await self._redis.xrange(QUEUE, job_id, job_id, count=1))

    @_wrapped
    async def depth(self) -> int:
        return int(await self._redis.xlen(QUEUE))


class RedisRoomDirectory(RoomDirectory):
    def __init__(self, redis: Redis, lease_ttl: float = 1.0) -> None:
        self._redis = redis
        self.lease_ttl = lease_ttl
        self._acquire = redis.register_script(_ACQUIRE)
        self._renew = redis.register_script(_RENEW)
        self._save = redis.register_script(_SAVE)
        self._release = redis.register_script(_RELEASE)
        self._profiles: dict[str, str] = {}

    @property
    def _ttl_ms(self) -> int:
        return int(self.lease_ttl * 1000)

    @_wrapped
    async def acquire(
        self, room_id: str, agent_id: str, profile: str, takeover_fence: int | None = None
    ) -> Lease | None:
        fence = await self._acquire(
            keys=[_room(room_id, "lease"), _room(room_id, "fence"), ROOMS, _room(room_id, "ended")],
            args=[room_id, agent_id, str(takeover_fence or ""), self._ttl_ms, profile],
        )
        if fence is None:
            return None
        if int(fence) < 0:
            raise RoomEnded(f"room {room_id}: the call is over")
        self._profiles[room_id] = profile
        return Lease(room_id=room_id, agent_id=agent_id, fence=int(fence))

    @_wrapped
    async def renew(self, lease: Lease) -> bool:
        result = await self._renew(
            keys=[
                _room(lease.room_id, "lease"),
                _room(lease.room_id, "fence"),
                ROOMS,
                _room(lease.room_id, "ended"),
            ],
            args=[
                _lease_value(lease),
                self._ttl_ms,
                lease.fence,
                lease.room_id,
                self._profiles.get(lease.room_id, ""),
            ],
        )
        if int(result) < 0:
            raise RoomEnded(f"room {lease.room_id}: the call is over")
        return int(result) > 0

    @_wrapped
    async def holder(self, room_id: str) -> str | None:
        value = await self._redis.get(_room(room_id, "lease"))
        return None if value is None else _text(value).rsplit("|", 1)[0]

    @_wrapped
    async def release(self, lease: Lease) -> None:
        await self._release(keys=[_room(lease.room_id, "lease")], args=[_lease_value(lease)])

    @_wrapped
    async def orphans(self) -> list[tuple[str, str]]:
        raw: Any = await self._redis.hgetall(ROOMS)
        rooms = {_text(k): _text(v) for k, v in raw.items()}
        if not rooms:
            return []
        ids = list(rooms)
        async with self._redis.pipeline(transaction=False) as pipe:
            for room_id in ids:
                pipe.exists(_room(room_id, "lease"))
            held = await pipe.execute()
        return [
            (room_id, rooms[room_id])
            for room_id, exists in zip(ids, held, strict=True)
            if not exists
        ]

    @_wrapped
    async def mark_requeued(self, room_id: str, hold: float = 5.0) -> bool:
        ok = await self._redis.set(_room(room_id, "requeue"), "1", nx=True, px=int(hold * 1000))
        return bool(ok)

    @_wrapped
    async def rooms(self) -> dict[str, str]:
        keys: Any = await self._redis.hkeys(ROOMS)
        ids = [_text(r) for r in keys]
        if not ids:
            return {}
        values: Any = await self._redis.mget([_room(r, "lease") for r in ids])
        return {
            room_id: (_text(value).rsplit("|", 1)[0] if value else "")
            for room_id, value in zip(ids, values, strict=True)
        }

    @_wrapped
    async def load_state(self, room_id: str) -> ConversationState | None:
        raw = await self._redis.get(_room(room_id, "state"))
        return None if raw is None else ConversationState.model_validate_json(raw)

    @_wrapped
    async def save_state(self, state: ConversationState, lease: Lease) -> None:
        saved = await self._save(
            keys=[
                _room(state.room_id, "lease"),
                _room(state.room_id, "fence"),
                _room(state.room_id, "state"),
                _room(state.room_id, "ended"),
            ],
            args=[
                _lease_value(lease),
                self._ttl_ms,
                lease.fence,
                state.model_dump_json(),
                STATE_TTL_S,
            ],
        )
        if int(saved) < 0:
            raise RoomEnded(f"room {state.room_id}: the call is over")
        if not int(saved):
            raise LeaseLost(f"room {state.room_id}: lease fence {lease.fence} is stale")

    @_wrapped
    async def end_room(self, room_id: str) -> None:
        self._profiles.pop(room_id, None)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hdel(ROOMS, room_id)
            pipe.delete(
                _room(room_id, "state"),
                _room(room_id, "lease"),
                _room(room_id, "fence"),
                _room(room_id, "requeue"),
            )
            pipe.set(_room(room_id, "ended"), "1", ex=int(TOMBSTONE_SECONDS))
            await pipe.execute()


class RedisAgentRegistry(AgentRegistry):
    def __init__(self, redis: Redis, heartbeat_interval: float = 1.0) -> None:
        self._redis = redis
        self.heartbeat_interval = heartbeat_interval

    @_wrapped
    async def heartbeat(self, info: AgentInfo) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(
                f"vf:agent:{info.agent_id}",
                info.model_dump_json(),
                px=int(self.heartbeat_interval * 3000),
            )
            pipe.sadd(AGENTS, info.agent_id)
            await pipe.execute()

    @_wrapped
    async def agents(self) -> list[AgentInfo]:
        members: Any = await self._redis.smembers(AGENTS)
        ids = [_text(a) for a in members]
        if not ids:
            return []
        values: Any = await self._redis.mget([f"vf:agent:{a}" for a in ids])
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

    @_wrapped
    async def remove(self, agent_id: str) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.delete(f"vf:agent:{agent_id}")
            pipe.srem(AGENTS, agent_id)
            await pipe.execute()
