"""The room directory on Redis: leases with fencing (Lua scripts), each room's
conversation state, the set of live rooms, orphans and tombstones.

Keys: ``vf:rooms`` (hash room -> profile), ``vf:room:{id}:lease``
("agent|fence", PX ttl), ``:fence`` (counter), ``:state`` (JSON), ``:requeue``
(NX marker), ``:socket`` (the caller's socket now), ``:ended`` (tombstone of a
call that is over). If Redis restarts
empty (or a failover loses recent writes), an agent's next renew or save finds
its lease gone and no newer fence, and re-asserts both: live rooms survive."""

from __future__ import annotations

from redis.asyncio import Redis

from voxfleet.dispatch.base import TOMBSTONE_SECONDS, Lease, LeaseLost, RoomDirectory, RoomEnded
from voxfleet.dispatch.redis.keys import Reply, room_key, text, wrapped
from voxfleet.dispatch.redis.scripts import ACQUIRE, CLAIM_SOCKET, RELEASE, RENEW, SAVE
from voxfleet.domain.conversation import ConversationState

ROOMS = "vf:rooms"
STATE_TTL_S = 6 * 3600


def _lease_value(lease: Lease) -> str:
    return f"{lease.agent_id}|{lease.fence}"


class RedisRoomDirectory(RoomDirectory):
    def __init__(self, redis: Redis, lease_ttl: float = 1.0) -> None:
        self._redis = redis
        self.lease_ttl = lease_ttl
        self._acquire = redis.register_script(ACQUIRE)
        self._renew = redis.register_script(RENEW)
        self._save = redis.register_script(SAVE)
        self._release = redis.register_script(RELEASE)
        self._claim_socket = redis.register_script(CLAIM_SOCKET)
        self._profiles: dict[str, str] = {}

    @property
    def _ttl_ms(self) -> int:
        return int(self.lease_ttl * 1000)

    @wrapped
    async def acquire(
        self, room_id: str, agent_id: str, profile: str, takeover_fence: int | None = None
    ) -> Lease | None:
        fence = await self._acquire(
            keys=[
                room_key(room_id, "lease"),
                room_key(room_id, "fence"),
                ROOMS,
                room_key(room_id, "ended"),
            ],
            args=[room_id, agent_id, str(takeover_fence or ""), self._ttl_ms, profile],
        )
        if fence is None:
            return None
        if int(fence) < 0:
            raise RoomEnded(f"room {room_id}: the call is over")
        self._profiles[room_id] = profile
        return Lease(room_id=room_id, agent_id=agent_id, fence=int(fence))

    @wrapped
    async def renew(self, lease: Lease) -> bool:
        result = await self._renew(
            keys=[
                room_key(lease.room_id, "lease"),
                room_key(lease.room_id, "fence"),
                ROOMS,
                room_key(lease.room_id, "ended"),
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

    @wrapped
    async def holder(self, room_id: str) -> str | None:
        value = await self._redis.get(room_key(room_id, "lease"))
        return None if value is None else text(value).rsplit("|", 1)[0]

    @wrapped
    async def release(self, lease: Lease) -> None:
        await self._release(keys=[room_key(lease.room_id, "lease")], args=[_lease_value(lease)])

    @wrapped
    async def orphans(self) -> list[tuple[str, str]]:
        raw: dict[Reply, Reply] = await self._redis.hgetall(ROOMS)
        rooms = {text(k): text(v) for k, v in raw.items()}
        if not rooms:
            return []
        ids = list(rooms)
        async with self._redis.pipeline(transaction=False) as pipe:
            for room_id in ids:
                pipe.exists(room_key(room_id, "lease"))
            held = await pipe.execute()
        return [
            (room_id, rooms[room_id])
            for room_id, exists in zip(ids, held, strict=True)
            if not exists
        ]

    @wrapped
    async def mark_requeued(self, room_id: str, hold: float = 5.0) -> bool:
        ok = await self._redis.set(room_key(room_id, "requeue"), "1", nx=True, px=int(hold * 1000))
        return bool(ok)

    @wrapped
    async def rooms(self) -> dict[str, str]:
        keys: list[Reply] = await self._redis.hkeys(ROOMS)
        ids = [text(r) for r in keys]
        if not ids:
            return {}
        values: list[Reply | None] = await self._redis.mget([room_key(r, "lease") for r in ids])
        return {
            room_id: (text(value).rsplit("|", 1)[0] if value else "")
            for room_id, value in zip(ids, values, strict=True)
        }

    @wrapped
    async def load_state(self, room_id: str) -> ConversationState | None:
        raw = await self._redis.get(room_key(room_id, "state"))
        return None if raw is None else ConversationState.model_validate_json(raw)

    @wrapped
    async def save_state(self, state: ConversationState, lease: Lease) -> None:
        saved = await self._save(
            keys=[
                room_key(state.room_id, "lease"),
                room_key(state.room_id, "fence"),
                room_key(state.room_id, "state"),
                room_key(state.room_id, "ended"),
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

    @wrapped
    async def claim_socket(self, room_id: str, epoch: int, replaces: int | None) -> bool:
        claimed = await self._claim_socket(
            keys=[room_key(room_id, "socket"), room_key(room_id, "ended")],
            args=[epoch, "" if replaces is None else replaces, int(TOMBSTONE_SECONDS)],
        )
        if int(claimed) < 0:
            raise RoomEnded(f"room {room_id}: the call is over")
        return int(claimed) > 0

    @wrapped
    async def socket_of(self, room_id: str) -> int | None:
        value = await self._redis.get(room_key(room_id, "socket"))
        return None if value is None else int(text(value))

    @wrapped
    async def end_room(self, room_id: str) -> None:
        self._profiles.pop(room_id, None)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hdel(ROOMS, room_id)
            pipe.delete(
                room_key(room_id, "state"),
                room_key(room_id, "lease"),
                room_key(room_id, "fence"),
                room_key(room_id, "requeue"),
                room_key(room_id, "socket"),
            )
            pipe.set(room_key(room_id, "ended"), "1", ex=int(TOMBSTONE_SECONDS))
            await pipe.execute()
