"""RedisBus against real redis-server processes: the in-process bus's contract, two
buses standing in for two processes, and Redis going away and coming back."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
from redis.asyncio import Redis

from tests.support.redis_server import RedisServer
from voxfleet.bus.base import Subscription
from voxfleet.bus.memory import QUEUE_LIMIT
from voxfleet.bus.redis import PREFIX, RedisBus
from voxfleet.errors import BusUnavailable, ConfigError, VoxfleetError

pytestmark = pytest.mark.integration

BusFactory = Callable[..., RedisBus]


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with RedisServer() as s:
        yield s


@pytest.fixture
def own_server() -> Iterator[RedisServer]:
    """A server this test may stop and restart without disturbing the others."""
    with RedisServer() as s:
        yield s


@pytest.fixture
async def make_bus() -> AsyncIterator[BusFactory]:
    buses: list[RedisBus] = []

    def make(url: str, **kwargs: str) -> RedisBus:
        bus = RedisBus(url, **kwargs)
        buses.append(bus)
        return bus

    yield make
    for bus in buses:
        await bus.close()


@pytest.fixture
async def bus(server: RedisServer, make_bus: BusFactory) -> RedisBus:
    return make_bus(server.url)


async def eventually(check: Callable[[], bool | Awaitable[bool]], timeout: float = 10.0) -> None:
    """Poll ``check`` until it holds; fail after ``timeout``."""
    async with asyncio.timeout(timeout):
        while True:
            result = check()
            if await result if inspect.isawaitable(result) else result:
                return
            await asyncio.sleep(0.02)


async def numsub(server: RedisServer, topic: str) -> int:
    async with Redis.from_url(server.url) as r:
        counts = await r.pubsub_numsub(PREFIX + topic)
        return int(counts[0][1])


async def wait_until_delivered(
    publisher: RedisBus, sub: Subscription, timeout: float = 10.0
) -> None:
    """Publish numbered probes until ``sub`` receives one, then drain up to the last
    probe, so later messages are the next thing ``sub`` sees."""
    sent = -1
    async with asyncio.timeout(timeout):
        while True:
            with contextlib.suppress(BusUnavailable):
                await publisher.publish(sub.topic, b"probe-%d" % (sent + 1))
                sent += 1
            got = await sub.get(timeout=0.1)
            if got is not None:
                break
        while got != b"probe-%d" % sent:
            got = await sub.get()


# -- the same contract as the in-process bus ---------------------------------------


async def test_fan_out_in_order(bus: RedisBus) -> None:
    a = await bus.subscribe("room/1/up")
    b = await bus.subscribe("room/1/up")
    for m in (b"one", b"two", b"three"):
        await bus.publish("room/1/up", m)
    for sub in (a, b):
        assert [await sub.get(timeout=5) for _ in range(3)] == [b"one", b"two", b"three"]


async def test_topics_are_isolated(bus: RedisBus) -> None:
    up = await bus.subscribe("room/2/up")
    down = await bus.subscribe("room/2/down")
    await bus.publish("room/2/down", b"for down")
    await bus.publish("room/2/up", b"for up")
    assert await up.get(timeout=5) == b"for up"
    assert await down.get(timeout=5) == b"for down"
    assert await down.get(timeout=0.05) is None


async def test_get_times_out_with_none(bus: RedisBus) -> None:
    sub = await bus.subscribe("quiet")
    assert await sub.get(timeout=0.05) is None


async def test_close_ends_iteration_and_unsubscribes(bus: RedisBus, server: RedisServer) -> None:
    first = await bus.subscribe("room/3/up")
    second = await bus.subscribe("room/3/up")
    assert await numsub(server, "room/3/up") == 1  # one connection carries both

    received: list[bytes] = []

    async def consume() -> None:
        async for message in first:
            received.append(message)

    consumer = asyncio.create_task(consume(), name="test-consume")
    await bus.publish("room/3/up", b"before close")
    await eventually(lambda: bool(received))
    await first.close()
    await asyncio.wait_for(consumer, 5)
    assert received == [b"before close"]
    assert await first.get() is None
    assert await numsub(server, "room/3/up") == 1  # the other subscriber is still there

    async with second:
        pass
    assert [m async for m in second] == [b"before close"]  # what was queued, then the end
    assert await second.get() is None

    async def unsubscribed() -> bool:
        return await numsub(server, "room/3/up") == 0

    await eventually(unsubscribed)


async def test_binary_payloads(bus: RedisBus) -> None:
    sub = await bus.subscribe("binary")
    payloads = [
        bytes(range(256)),
        b"",
        b"\r\n*1\r\n$0\r\n",
        b"\x00" * 640,
        bytes(range(255, -1, -1)),
    ]
    for p in payloads:
        await bus.publish("binary", p)
    assert [await sub.get(timeout=5) for _ in payloads] == payloads


async def test_a_thousand_messages_in_order(bus: RedisBus) -> None:
    sub = await bus.subscribe("many")
    sent = [i.to_bytes(4, "big") for i in range(1000)]
    for m in sent:
        await bus.publish("many", m)
    assert [await sub.get(timeout=5) for _ in sent] == sent
    assert sub.dropped == 0  # type: ignore[attr-defined]


async def test_a_slow_subscriber_loses_the_oldest(bus: RedisBus) -> None:
    sub = await bus.subscribe("slow")
    extra = 5
    for i in range(QUEUE_LIMIT + extra):
        await bus.publish("slow", i.to_bytes(4, "big"))
    await eventually(lambda: sub.dropped == extra)  # type: ignore[attr-defined]
    assert await sub.get(timeout=5) == extra.to_bytes(4, "big")


async def test_close_ends_every_subscription(server: RedisServer, make_bus: BusFactory) -> None:
    bus = make_bus(server.url)
    subs = [await bus.subscribe(t) for t in ("a", "b", "b")]
    await bus.close()
    for sub in subs:
        assert [m async for m in sub] == []
    with pytest.raises(VoxfleetError):
        await bus.publish("a", b"after close")
    await bus.close()  # twice is fine


# -- across processes ---------------------------------------------------------------


async def test_two_buses_are_two_processes(server: RedisServer, make_bus: BusFactory) -> None:
    edge, agent = make_bus(server.url, name="edge"), make_bus(server.url, name="agent")
    up = await agent.subscribe("room/4/up")
    down = await edge.subscribe("room/4/down")
    await edge.publish("room/4/up", b"caller audio")
    await agent.publish("room/4/down", b"agent audio")
    assert await up.get(timeout=5) == b"caller audio"
    assert await down.get(timeout=5) == b"agent audio"


# -- Redis goes away ----------------------------------------------------------------


async def test_subscriptions_survive_a_redis_restart(
    own_server: RedisServer, make_bus: BusFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="voxfleet.bus.redis")
    edge, agent = make_bus(own_server.url), make_bus(own_server.url)
    sub = await agent.subscribe("room/5/up")
    other = await agent.subscribe("room/5/down")
    await edge.publish("room/5/up", b"before")
    assert await sub.get(timeout=5) == b"before"
    assert agent.connected
    assert await agent.ping()

    own_server.stop()
    started = time.monotonic()
    with pytest.raises(BusUnavailable) as failed:
        await edge.publish("room/5/up", b"while down")
    assert failed.value.retryable
    assert time.monotonic() - started < 10  # bounded, not hanging
    assert not await edge.ping()
    await eventually(lambda: not agent.connected)
    with pytest.raises(BusUnavailable):
        await agent.subscribe("room/6/up")
    assert await sub.get(timeout=0.05) is None  # a gap, not an error

    own_server.start()
    await wait_until_delivered(edge, sub)
    await wait_until_delivered(edge, other)  # every topic was subscribed again
    for m in (b"after-1", b"after-2", b"after-3"):
        await edge.publish("room/5/up", m)
    assert [await sub.get(timeout=5) for _ in range(3)] == [b"after-1", b"after-2", b"after-3"]
    assert agent.connected
    assert await agent.ping()
    assert await edge.ping()
    assert any(r.getMessage() == "bus reconnected" for r in caplog.records)


async def test_publish_rides_out_a_short_outage(
    own_server: RedisServer, make_bus: BusFactory
) -> None:
    bus = make_bus(own_server.url)
    assert await bus.ping()
    own_server.stop()
    publishing = asyncio.create_task(bus.publish("room/7/up", b"x"), name="test-publish")
    await asyncio.sleep(0)  # let the first attempt fail
    own_server.start()
    await asyncio.wait_for(publishing, 10)  # succeeded within its retry window


async def test_a_killed_connection_is_replaced(server: RedisServer, make_bus: BusFactory) -> None:
    edge, agent = make_bus(server.url), make_bus(server.url, name="killed")
    sub = await agent.subscribe("room/8/up")
    async with Redis.from_url(server.url) as admin:
        killed = await admin.client_kill_filter(_type="pubsub", skipme=True)
    assert killed >= 1
    await wait_until_delivered(edge, sub)
    await edge.publish("room/8/up", b"still here")
    assert await sub.get(timeout=5) == b"still here"


# -- passwords ----------------------------------------------------------------------


@pytest.fixture
def locked_server() -> Iterator[RedisServer]:
    with RedisServer(password="s3cret-pw") as s:
        yield s


async def test_password_argument(locked_server: RedisServer, make_bus: BusFactory) -> None:
    stale_url = f"redis://:wrong@127.0.0.1:{locked_server.port}/0"
    bus = make_bus(stale_url, password="s3cret-pw")  # the separate password wins
    sub = await bus.subscribe("room/9/up")
    await bus.publish("room/9/up", b"authorised")
    assert await sub.get(timeout=5) == b"authorised"
    assert await bus.ping()


@pytest.mark.parametrize("password", [None, "wrong"])
async def test_missing_or_wrong_password_fails_clearly(
    locked_server: RedisServer, make_bus: BusFactory, password: str | None
) -> None:
    bus = make_bus(locked_server.url, **({"password": password} if password else {}))
    with pytest.raises(ConfigError, match="AuthenticationError"):
        await bus.publish("room/10/up", b"x")
    with pytest.raises(ConfigError, match="AuthenticationError"):
        await bus.subscribe("room/10/up")
    assert not await bus.ping()
    assert not bus.connected


# -- TLS ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_server() -> Iterator[RedisServer]:
    with RedisServer(tls=True) as s:
        yield s


async def test_rediss_verifies_the_certificate(
    tls_server: RedisServer, make_bus: BusFactory
) -> None:
    bus = make_bus(f"{tls_server.url}?ssl_ca_certs={tls_server.ca_file}")
    sub = await bus.subscribe("room/11/up")
    await bus.publish("room/11/up", b"encrypted")
    assert await sub.get(timeout=5) == b"encrypted"


async def test_an_untrusted_certificate_fails_clearly(
    tls_server: RedisServer, make_bus: BusFactory
) -> None:
    bus = make_bus(tls_server.url)  # no CA for the self-signed certificate
    with pytest.raises(ConfigError, match="certificate verify failed"):
        await bus.publish("room/12/up", b"x")
    assert not await bus.ping()
