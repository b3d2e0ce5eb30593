"""One contract for both dispatch implementations (in-process and Redis): the
queue, leases with fencing, fenced state, orphans, and the agent registry. The
Redis side runs against a real redis-server of its own."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
from redis.asyncio import Redis

from tests.support.redis_server import RedisServer
from tests.support.server import free_port
from voxfleet.dispatch.base import (
    AgentInfo,
    AgentRegistry,
    LeaseLost,
    RoomDirectory,
    RoomEnded,
    RoomJob,
    RoomQueue,
)
from voxfleet.dispatch.memory import (
    InProcessAgentRegistry,
    InProcessRoomDirectory,
    InProcessRoomQueue,
)
from voxfleet.dispatch.redis import RedisAgentRegistry, RedisRoomDirectory, RedisRoomQueue
from voxfleet.domain.conversation import ConversationState

pytestmark = pytest.mark.integration
TTL = 0.3


@dataclass
class Parts:
    queue: RoomQueue
    directory: RoomDirectory
    registry: AgentRegistry
    redis: Redis | None = None


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer(free_port()) as server:
        yield server


@pytest.fixture(params=["memory", "redis"])
async def parts(request: pytest.FixtureRequest) -> AsyncIterator[Parts]:
    if request.param == "memory":
        yield Parts(InProcessRoomQueue(), InProcessRoomDirectory(TTL), InProcessAgentRegistry(0.2))
        return
    async with _redis_parts(request.getfixturevalue("redis_server")) as found:
        yield found


@pytest.fixture
async def redis_parts(redis_server: RedisServer) -> AsyncIterator[Parts]:
    async with _redis_parts(redis_server) as found:
        yield found


@contextlib.asynccontextmanager
async def _redis_parts(server: RedisServer) -> AsyncIterator[Parts]:
    redis = Redis.from_url(server.url)
    await redis.flushall()
    try:
        yield Parts(
            RedisRoomQueue(redis, claim_idle_ms=200),
            RedisRoomDirectory(redis, TTL),
            RedisAgentRegistry(redis, 0.2),
            redis,
        )
    finally:
        await redis.aclose()


def job(room: str, **kw: object) -> RoomJob:
    return RoomJob(room_id=room, profile="default", enqueued_at=time.time(), **kw)  # type: ignore[arg-type]


async def test_queue_is_fifo_and_counts_waiting_rooms(parts: Parts) -> None:
    for room in ("a", "b", "c"):
        await parts.queue.put(job(room))
    assert await parts.queue.depth() == 3
    taken = [await parts.queue.take("agent-1", timeout=1) for _ in range(3)]
    assert [t.room_id for t in taken if t] == ["a", "b", "c"]
    for t in taken:
        assert t is not None
        await parts.queue.done(t)
    assert await parts.queue.depth() == 0
    assert await parts.queue.take("agent-1", timeout=0.1) is None


async def test_a_job_taken_by_a_dead_agent_goes_to_another(redis_parts: Parts) -> None:
    # Redis only: in-process, a dead agent is a dead process with nothing to reclaim.
    parts = redis_parts
    await parts.queue.put(job("a"))
    first = await parts.queue.take("dies", timeout=1)
    assert first is not None
    await asyncio.sleep(0.3)  # longer than claim_idle_ms
    again = await parts.queue.take("survivor", timeout=1)
    assert again is not None and again.room_id == "a"


async def test_one_holder_per_room_and_fenced_writes(parts: Parts) -> None:
    d = parts.directory
    lease = await d.acquire("r", "agent-1", "default")
    assert lease is not None and lease.fence == 1
    assert await d.acquire("r", "agent-2", "default") is None
    state = ConversationState(room_id="r", profile="default")
    await d.save_state(state, lease)
    # A handover: agent-2 takes the room with the fence agent-1 offered.
    taken = await d.acquire("r", "agent-2", "default", takeover_fence=lease.fence)
    assert taken is not None and taken.fence == 2
    assert not await d.renew(lease)
    with pytest.raises(LeaseLost):
        await d.save_state(state, lease)
    state.greeted = True
    await d.save_state(state, taken)
    loaded = await d.load_state("r")
    assert loaded is not None and loaded.greeted
    # A stale offer (an old fence) no longer works.
    assert await d.acquire("r", "agent-3", "default", takeover_fence=lease.fence) is None
    assert (await d.rooms()) == {"r": "agent-2"}


async def test_a_lapsed_lease_makes_an_orphan_requeued_once(parts: Parts) -> None:
    d = parts.directory
    lease = await d.acquire("r", "agent-1", "barista")
    assert lease is not None
    assert await d.orphans() == []
    assert await d.renew(lease)
    await asyncio.sleep(TTL * 1.5)
    assert await d.orphans() == [("r", "barista")]
    assert await d.mark_requeued("r")
    assert not await d.mark_requeued("r")
    successor = await d.acquire("r", "agent-2", "barista")
    assert successor is not None and successor.fence == 2
    assert await d.orphans() == []
    await d.end_room("r")
    assert await d.rooms() == {} and await d.load_state("r") is None


async def test_registry_lists_live_agents_only(parts: Parts) -> None:
    reg = parts.registry
    info = AgentInfo(agent_id="a1", capacity=2, active=1, ready=True, draining=False, seen=0)
    await reg.heartbeat(info.model_copy(update={"seen": time.time()}))
    await reg.heartbeat(info.model_copy(update={"agent_id": "a2", "seen": time.time()}))
    assert sorted(a.agent_id for a in await reg.agents()) == ["a1", "a2"]
    await reg.remove("a2")
    assert [a.agent_id for a in await reg.agents()] == ["a1"]
    await asyncio.sleep(0.7)  # over three 0.2 s heartbeats without one
    assert await reg.agents() == []


async def test_leases_and_state_survive_redis_losing_its_data(redis_parts: Parts) -> None:
    parts = redis_parts
    assert parts.redis is not None
    d = parts.directory
    lease = await d.acquire("r", "agent-1", "default")
    assert lease is not None
    await parts.redis.flushall()  # as after a restart without persistence
    assert await d.renew(lease)  # re-asserted
    state = ConversationState(room_id="r", profile="default", greeted=True)
    await d.save_state(state, lease)
    assert await d.rooms() == {"r": "agent-1"}
    assert await d.acquire("r", "agent-2", "default") is None


async def test_a_cancelled_job_is_never_taken(parts: Parts) -> None:
    first = await parts.queue.put(job("ended"))
    second = await parts.queue.put(job("live"))
    assert await parts.queue.waiting(first) and await parts.queue.waiting(second)
    await parts.queue.cancel(first)
    assert not await parts.queue.waiting(first)
    assert await parts.queue.depth() == 1
    taken = await parts.queue.take("agent-1", timeout=1)
    assert taken is not None and taken.room_id == "live"
    assert await parts.queue.waiting(second)  # taken, not yet done
    await parts.queue.done(taken)
    assert not await parts.queue.waiting(second)
    assert await parts.queue.depth() == 0
    assert await parts.queue.take("agent-1", timeout=0.1) is None


async def test_an_ended_room_is_never_taken_kept_or_saved_again(parts: Parts) -> None:
    d = parts.directory
    lease = await d.acquire("r", "agent-1", "default")
    assert lease is not None
    assert await d.holder("r") == "agent-1"
    await d.end_room("r")
    assert await d.holder("r") is None
    assert await d.rooms() == {} and await d.orphans() == []
    with pytest.raises(RoomEnded):
        await d.renew(lease)
    with pytest.raises(RoomEnded):
        await d.save_state(ConversationState(room_id="r", profile="default"), lease)
    with pytest.raises(RoomEnded):
        await d.acquire("r", "agent-2", "default")


async def test_a_lapsed_lease_nobody_took_is_kept_by_its_holder(parts: Parts) -> None:
    d = parts.directory
    lease = await d.acquire("r", "agent-1", "default")
    assert lease is not None
    await asyncio.sleep(TTL * 1.5)  # the holder stalled longer than the lease lives
    assert await d.holder("r") is None
    assert await d.renew(lease)  # nobody took a newer fence: still ours
    assert await d.holder("r") == "agent-1"
    await asyncio.sleep(TTL * 1.5)
    successor = await d.acquire("r", "agent-2", "default")
    assert successor is not None
    assert not await d.renew(lease)  # now it is not


async def test_redis_losing_the_queue_shows_in_waiting(redis_parts: Parts) -> None:
    parts = redis_parts
    assert parts.redis is not None
    job_id = await parts.queue.put(job("a"))
    assert await parts.queue.waiting(job_id)
    await parts.redis.flushall()  # a restart without persistence
    assert not await parts.queue.waiting(job_id)
    assert await parts.queue.take("agent-1", timeout=0.1) is None  # the group is recreated
    again = await parts.queue.put(job("a"))
    taken = await parts.queue.take("agent-1", timeout=1)
    assert taken is not None and taken.job_id == again


async def test_a_failover_that_lost_our_newest_fence_gives_the_room_back(
    redis_parts: Parts,
) -> None:
    parts = redis_parts
    assert parts.redis is not None
    d = parts.directory
    first = await d.acquire("r", "agent-1", "default")
    assert first is not None
    snapshot = await parts.redis.dump("vf:room:r:lease"), await parts.redis.get("vf:room:r:fence")
    newer = await d.acquire("r", "agent-1", "default")  # the same agent, a fresh fence
    assert newer is not None and newer.fence == first.fence + 1
    # A replica that missed the last writes takes over: the lease names our old fence.
    await parts.redis.set("vf:room:r:lease", f"agent-1|{first.fence}", px=1000)
    await parts.redis.set("vf:room:r:fence", snapshot[1])
    assert await d.renew(newer)
    assert await d.holder("r") == "agent-1"
    await d.save_state(ConversationState(room_id="r", profile="default"), newer)
    # ... but never a lease that names another agent.
    await parts.redis.set("vf:room:r:lease", "agent-2|1", px=1000)
    assert not await d.renew(newer)


async def test_one_caller_socket_per_room_and_only_its_resume_takes_over(parts: Parts) -> None:
    d = parts.directory
    assert await d.claim_socket("r", 100, None)
    assert await d.socket_of("r") == 100
    assert not await d.claim_socket("r", 101, None)  # a second socket
    assert not await d.claim_socket("r", 102, 99)  # a resume of a socket long replaced
    assert await d.claim_socket("r", 103, 100)  # the caller of socket 100 resumes
    assert await d.socket_of("r") == 103
    assert not await d.claim_socket("r", 104, 100)  # that resume URL is spent
    await d.end_room("r")
    assert await d.socket_of("r") is None
    with pytest.raises(RoomEnded):
        await d.claim_socket("r", 105, 103)
