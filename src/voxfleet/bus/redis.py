"""Bus on Redis pub/sub, for roles in separate processes: room audio, control and events
between the landing edge, agents and monitors. One connection per bus carries every local
subscription and re-subscribes when Redis returns. Messages published while Redis is
unreachable are lost (subscribers see a gap): room traffic that must not be lost goes
as numbered streams that replay what a receiver missed (transport/stream.py)."""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from voxfleet.aio import Backoff, TaskSet, closed_transport
from voxfleet.bus.base import Bus, QueuedSubscription, Subscription
from voxfleet.bus.memory import QUEUE_LIMIT
from voxfleet.bus.redis_publisher import (
    PUBLISH_TIMEOUT_S,
    REDIS_ERRORS,
    BatchPublisher,
    describe,
    failure,
    without_password,
)
from voxfleet.errors import ConfigError, VoxfleetError
from voxfleet.observability.logging import get_logger

log = get_logger(__name__)

PREFIX = "vf:bus:"
CONNECT_TIMEOUT_S = 1.0
# PUBLISH_TIMEOUT_S is also how long subscribe() waits for Redis to confirm.
HEALTH_INTERVAL_S = 5.0  # an idle reader PINGs; no answer in another interval: reconnect


class _RedisSubscription(QueuedSubscription):
    def __init__(self, bus: RedisBus, topic: str) -> None:
        super().__init__(topic, QUEUE_LIMIT)
        self._bus = bus

    def _end(self) -> None:
        if not self._closed:
            self._closed = True
            self._deliver(None)

    async def close(self) -> None:
        if not self._closed:
            self._end()
            await self._bus._remove(self)


@dataclass(slots=True)
class _Topic:
    subs: set[_RedisSubscription] = field(default_factory=set)
    live: asyncio.Event = field(default_factory=asyncio.Event)  # SUBSCRIBE confirmed


class RedisBus(Bus):
    """``url`` is ``redis://`` or ``rediss://`` (TLS, certificate required unless the
    URL says otherwise); ``password`` overrides the URL's; ``name`` is the Redis
    client name (CLIENT LIST) and the ``bus`` field of log lines.

    ``publish`` and ``subscribe`` retry for up to 2 s, then raise BusUnavailable
    (or ConfigError if Redis refuses the credentials). Only a PUBLISH that Redis
    refused or cut off unanswered is sent again; one whose reply timed out is not,
    as Redis may have delivered it."""

    def __init__(self, url: str, *, password: str | None = None, name: str = "voxfleet") -> None:
        if not name or any(c.isspace() for c in name):
            raise ConfigError(f"bus name {name!r} must be one word (it is the Redis client name)")
        options: dict[str, Any] = {
            # Retries are ours: bounded, backed off, and never resending a message.
            "retry": Retry(NoBackoff(), 0),
            "socket_connect_timeout": CONNECT_TIMEOUT_S,
            # Deadlines are ours too (asyncio.timeout): with a socket timeout redis-py
            # sends through asyncio.wait_for, which on 3.11 can swallow a cancellation.
            "socket_timeout": None,
            "socket_keepalive": True,
            "client_name": name,
            "protocol": 2,  # pub/sub messages as plain replies, not RESP3 pushes
            "decode_responses": False,
        }
        if password is not None:
            url = without_password(url)
            options["password"] = password
        if url.startswith("rediss://"):
            options["ssl_cert_reqs"] = "required"
        self._name = name
        self._redis = Redis.from_url(url, **options)
        self._topics: dict[str, _Topic] = {}
        # Topics waiting for their (UN)SUBSCRIBE confirmation, in the order sent.
        self._pending: defaultdict[bytes, deque[_Topic | None]] = defaultdict(deque)
        self._conn: AbstractConnection | None = None  # the pub/sub connection, when up
        self._send_lock = asyncio.Lock()
        self._tasks = TaskSet(f"bus:{name}")
        self._reader: asyncio.Task[None] | None = None
        self._publisher = BatchPublisher(self._redis, name)
        self._last_error: BaseException | None = None
        self._closed = False

    @property
    def connected(self) -> bool:
        """True while the pub/sub connection is up (the reader starts on first use)."""
        return self._conn is not None

    async def ping(self) -> bool:
        """Readiness: Redis answers PING within the publish timeout."""
        if self._closed:
            return False
        self._start()
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT_S):
                return bool(await self._redis.ping())
        except REDIS_ERRORS:
            return False
        except RuntimeError as e:
            if not closed_transport(e):
                raise
            return False

    async def publish(self, topic: str, message: bytes) -> None:
        """Batched with the other publishes of this event-loop tick
        (bus/redis_publisher.py); raises BusUnavailable after 2 s of trying."""
        self._start()
        await self._publisher.publish(_channel(topic), message)

    async def subscribe(self, topic: str) -> Subscription:
        self._start()
        sub = _RedisSubscription(self, topic)
        state = self._topics.get(topic)
        if state is None:
            state = self._topics[topic] = _Topic({sub})
            await self._send("SUBSCRIBE", topic, state)
        else:
            state.subs.add(sub)
        # Wait for Redis to confirm, so a publish made after we return reaches us.
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT_S):
                await state.live.wait()
        except BaseException as e:
            await sub.close()
            if isinstance(e, TimeoutError):
                raise failure("subscribe", self._last_error) from e
            raise
        return sub

    async def _remove(self, sub: _RedisSubscription) -> None:
        state = self._topics.get(sub.topic)
        if state is None or sub not in state.subs:
            return
        state.subs.discard(sub)
        if not state.subs:
            del self._topics[sub.topic]
            await self._send("UNSUBSCRIBE", sub.topic, None)

    async def _send(
        self, command: str, topic: str | None = None, state: _Topic | None = None
    ) -> None:
        """Send on the pub/sub connection if it is up; if it is down, the reader
        subscribes every current topic when it reconnects. A failed send breaks the
        connection, which the reader notices, so errors are not raised here."""
        async with self._send_lock:
            conn = self._conn
            if conn is None:
                return
            args: list[str | bytes] = [command]
            if topic is not None:
                channel = _channel(topic)
                self._pending[channel].append(state)
                args.append(channel)
            try:
                async with asyncio.timeout(PUBLISH_TIMEOUT_S):
                    await conn.send_command(*args, check_health=False)
            except (*REDIS_ERRORS, RuntimeError) as e:
                if isinstance(e, RuntimeError) and not closed_transport(e):
                    raise
                log.debug(
                    "bus command not sent", bus=self._name, command=command, error=describe(e)
                )

    def _start(self) -> None:
        if self._closed:
            raise VoxfleetError("the bus is closed")
        if self._reader is None:
            self._reader = self._tasks.spawn(self._run(), "reader")

    async def _run(self) -> None:
        failures = 0
        backoff = Backoff(0.05, 2.0)
        down_since = 0.0
        loop = asyncio.get_running_loop()
        while not self._closed:  # cancellation ends this; the flag is a backstop
            conn = self._redis.connection_pool.make_connection()  # type: ignore[no-untyped-call]
            try:
                await self._attach(conn)
                if failures:
                    log.info(
                        "bus reconnected",
                        bus=self._name,
                        attempts=failures,
                        down_s=round(loop.time() - down_since, 3),
                        topics=len(self._topics),
                    )
                failures = 0
                backoff.reset()
                await self._read(conn)
            except Exception as e:  # anything from the socket; the reader must live on
                self._last_error = e
                if failures == 0:
                    down_since = loop.time()
                    log.warning("bus unavailable", bus=self._name, error=describe(e))
                failures += 1
                log.debug(
                    "bus reconnect failed", bus=self._name, attempt=failures, error=describe(e)
                )
            finally:
                self._detach(conn)
                await conn.disconnect(nowait=True)
            await backoff.sleep()

    async def _attach(self, conn: AbstractConnection) -> None:
        async with asyncio.timeout(CONNECT_TIMEOUT_S + PUBLISH_TIMEOUT_S):
            await conn.connect()  # type: ignore[no-untyped-call]
        async with self._send_lock:
            self._conn = conn
            channels = []
            for topic, state in self._topics.items():
                channel = _channel(topic)
                self._pending[channel].append(state)
                channels.append(channel)
            if channels:
                async with asyncio.timeout(PUBLISH_TIMEOUT_S):
                    await conn.send_command("SUBSCRIBE", *channels, check_health=False)
        self._last_error = None

    def _detach(self, conn: AbstractConnection) -> None:
        if self._conn is conn:
            self._conn = None
            self._pending.clear()
            for state in self._topics.values():
                state.live.clear()

    async def _read(self, conn: AbstractConnection) -> None:
        pinged = False
        while not self._closed:
            reply = await conn.read_response(timeout=HEALTH_INTERVAL_S)
            if reply is None:
                if pinged:
                    raise ConnectionError("no answer to PING on the pub/sub connection")
                pinged = True
                await self._send("PING")
                continue
            pinged = False
            self._dispatch(reply)

    def _dispatch(self, reply: object) -> None:
        if not isinstance(reply, list) or len(reply) != 3:
            return  # PONG
        kind, channel, data = reply
        state = self._topics.get(_topic(channel))
        if kind == b"message":
            if state is not None:
                for sub in tuple(state.subs):
                    sub._deliver(data)
        elif kind in (b"subscribe", b"unsubscribe"):
            waiting = self._pending.get(channel)
            expected = waiting.popleft() if waiting else None
            if waiting is not None and not waiting:
                del self._pending[channel]
            if kind == b"subscribe" and expected is not None and expected is state:
                expected.live.set()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for state in self._topics.values():
            for sub in state.subs:
                sub._end()
        self._topics.clear()
        await self._publisher.close()
        await self._tasks.cancel_all()
        self._reader = None
        await self._redis.aclose()


def _channel(topic: str) -> bytes:
    return (PREFIX + topic).encode()


def _topic(channel: bytes) -> str:
    return channel.decode(errors="replace").removeprefix(PREFIX)
