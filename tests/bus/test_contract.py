"""The Bus contract, run against every implementation: per-topic delivery in order to
every current subscriber, timeouts, closing, and bytes that arrive unchanged.

Each implementation is a factory in BUSES; the Redis one runs against a
redis-server of this module's own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest

from tests.support.redis_server import RedisServer
from voxfleet.bus.base import Bus, Subscription
from voxfleet.bus.memory import InProcessBus
from voxfleet.bus.redis import RedisBus

pytestmark = pytest.mark.integration

WAIT = 5.0  # bound on waits for something that should arrive: a hang fails, not blocks
QUIET = 0.05  # how long to listen when asserting that nothing arrives


async def memory_bus(_request: pytest.FixtureRequest) -> Bus:
    return InProcessBus()


async def redis_bus(request: pytest.FixtureRequest) -> Bus:
    server: RedisServer = request.getfixturevalue("redis_server")
    return RedisBus(server.url)


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


BUSES: dict[str, Callable[[pytest.FixtureRequest], Awaitable[Bus]]] = {
    "memory": memory_bus,
    "redis": redis_bus,
}


@pytest.fixture(params=sorted(BUSES))
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[Bus]:
    bus = await BUSES[request.param](request)
    try:
        yield bus
    finally:
        await bus.close()


async def receive(sub: Subscription, count: int) -> list[bytes | None]:
    return [await sub.get(timeout=WAIT) for _ in range(count)]


async def drain(sub: Subscription) -> list[bytes]:
    async with asyncio.timeout(WAIT):
        return [message async for message in sub]


async def test_subscriber_gets_messages_published_after_it_subscribed_in_order(
    bus: Bus,
) -> None:
    await bus.publish("room/1/up", b"before")
    sub = await bus.subscribe("room/1/up")
    for message in (b"one", b"two", b"three"):
        await bus.publish("room/1/up", message)
    assert await receive(sub, 3) == [b"one", b"two", b"three"]
    assert await sub.get(timeout=QUIET) is None


async def test_no_delivery_to_other_topics(bus: Bus) -> None:
    up = await bus.subscribe("room/2/up")
    down = await bus.subscribe("room/2/down")
    other_room = await bus.subscribe("room/22/up")
    await bus.publish("room/2/down", b"for down")
    await bus.publish("room/2/up", b"for up")
    assert await up.get(timeout=WAIT) == b"for up"
    assert await down.get(timeout=WAIT) == b"for down"
    for sub in (up, down, other_room):
        assert await sub.get(timeout=QUIET) is None


async def test_every_subscriber_gets_every_message(bus: Bus) -> None:
    subs = [await bus.subscribe("events") for _ in range(3)]
    for message in (b"a", b"b", b"c"):
        await bus.publish("events", message)
    for sub in subs:
        assert await receive(sub, 3) == [b"a", b"b", b"c"]


async def test_publish_without_subscribers_is_fine(bus: Bus) -> None:
    await bus.publish("nobody/listens", b"lost")
    sub = await bus.subscribe("nobody/listens")
    assert await sub.get(timeout=QUIET) is None


async def test_get_returns_none_on_timeout(bus: Bus) -> None:
    sub = await bus.subscribe("quiet")
    assert await sub.get(timeout=QUIET) is None
    # A timed-out get loses nothing: the next message still arrives.
    await bus.publish("quiet", b"late")
    assert await sub.get(timeout=WAIT) == b"late"


async def test_close_ends_iteration_and_publishing_still_works(bus: Bus) -> None:
    closing = await bus.subscribe("room/3/up")
    staying = await bus.subscribe("room/3/up")
    await closing.close()

    assert await drain(closing) == []
    assert await asyncio.wait_for(closing.get(), WAIT) is None
    await bus.publish("room/3/up", b"after close")
    assert await staying.get(timeout=WAIT) == b"after close"
    assert await closing.get(timeout=QUIET) is None


async def test_close_wakes_a_blocked_iteration(bus: Bus) -> None:
    sub = await bus.subscribe("room/4/up")
    consumer = asyncio.create_task(drain(sub), name="test-consumer")
    await asyncio.sleep(0)  # let the consumer start waiting (not a timing assertion)
    await sub.close()
    assert await asyncio.wait_for(consumer, WAIT) == []


async def test_context_manager_closes_the_subscription(bus: Bus) -> None:
    async with await bus.subscribe("room/5/up") as sub:
        await bus.publish("room/5/up", b"inside")
        assert await sub.get(timeout=WAIT) == b"inside"
    await bus.publish("room/5/up", b"outside")
    assert await asyncio.wait_for(sub.get(), WAIT) is None


async def test_bus_close_ends_every_subscription(bus: Bus) -> None:
    subs = [await bus.subscribe("room/6/up"), await bus.subscribe("room/6/down")]
    await bus.close()
    for sub in subs:
        assert await drain(sub) == []


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\x00", id="nul"),
        pytest.param(bytes(range(256)), id="all-byte-values"),
        pytest.param(bytes(range(255, -1, -1)) * 64, id="16k-binary"),
        pytest.param("h\u00e9llo \u2615".encode(), id="utf8"),
    ],
)
async def test_bytes_arrive_unchanged(bus: Bus, payload: bytes) -> None:
    sub = await bus.subscribe("binary")
    await bus.publish("binary", payload)
    await bus.publish("binary", b"end")
    got = await sub.get(timeout=WAIT)
    assert type(got) is bytes
    assert got == payload
    assert await sub.get(timeout=WAIT) == b"end"


async def test_empty_message_does_not_end_iteration(bus: Bus) -> None:
    sub = await bus.subscribe("room/7/up")
    for message in (b"", b"x", b""):
        await bus.publish("room/7/up", message)
    received: list[bytes] = []
    async with asyncio.timeout(WAIT):
        async for message in sub:
            received.append(message)
            if len(received) == 3:
                break
    assert received == [b"", b"x", b""]


async def test_a_thousand_messages_in_order(bus: Bus) -> None:
    sub = await bus.subscribe("room/8/up")
    sent = [i.to_bytes(4, "big") for i in range(1000)]
    for message in sent:
        await bus.publish("room/8/up", message)
    assert await receive(sub, 1000) == sent
