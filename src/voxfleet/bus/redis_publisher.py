"""Publishing on Redis for the bus: every publish of one event-loop tick leaves
in one pipeline (a media edge publishes thousands of frames a second; one round
trip each was its main cost), batches one after another so order is kept.

A batch Redis refused or cut off unanswered did not go out and is sent again
within PUBLISH_TIMEOUT_S; one whose reply timed out is not, as Redis may have
delivered it. Also here: how Redis errors read to the rest of voxfleet."""

from __future__ import annotations

import asyncio
import ssl
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.exceptions import AuthenticationError, NoPermissionError, RedisError

from voxfleet.aio import Backoff, TaskSet, closed_transport
from voxfleet.errors import BusUnavailable, ConfigError, VoxfleetError
from voxfleet.observability.logging import get_logger

log = get_logger(__name__)

PUBLISH_TIMEOUT_S = 2.0
REDIS_ERRORS = (RedisError, OSError, TimeoutError)
# Refused, reset or closed without a reply: Redis did not process the command.
_REFUSED = (redis_errors.ConnectionError, ConnectionError)
_AUTH_ERRORS = (AuthenticationError, NoPermissionError)
_Pending = tuple[bytes, bytes, asyncio.Future[None]]


def without_password(url: str) -> str:
    """The URL minus its password, so a password given separately wins (redis-py
    lets URL options override keyword arguments)."""
    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    username = userinfo.partition(":")[0]
    netloc = f"{username}@{hostport}" if at and username else hostport
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "password"])
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def misconfigured(error: BaseException | None) -> bool:
    """Wrong password or an untrusted TLS certificate: waiting will not help."""
    while error is not None:
        if isinstance(error, (*_AUTH_ERRORS, ssl.SSLCertVerificationError)):
            return True
        error = error.__cause__ or error.__context__
    return False


def describe(error: BaseException | None) -> str:
    return "no answer" if error is None else f"{type(error).__name__}: {error}"


def failure(action: str, error: BaseException | None) -> VoxfleetError:
    if misconfigured(error):
        return ConfigError(
            f"redis refused the bus: {describe(error)}; check the credentials and certificate"
        )
    return BusUnavailable(f"redis is unreachable, could not {action}: {describe(error)}")


class BatchPublisher:
    def __init__(self, redis: Redis, name: str) -> None:
        self._redis = redis
        self._name = name
        self._batch: list[_Pending] = []
        self._ready = asyncio.Event()
        self._tasks = TaskSet(f"bus:{name}")
        self._flusher: asyncio.Task[None] | None = None

    async def publish(self, channel: bytes, message: bytes) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._batch.append((channel, message, done))
        self._ready.set()
        if self._flusher is None or self._flusher.done():
            self._flusher = self._tasks.spawn(self._flush_batches(), "publisher")
        await done

    async def _flush_batches(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            batch, self._batch = self._batch, []
            if not batch:
                continue
            try:
                await self._send(batch)
            except Exception as e:  # never leave a publisher waiting forever
                log.exception("publish batch failed", bus=self._name)
                for *_, done in batch:
                    if not done.done():
                        done.set_exception(failure("publish", e))

    async def _send(self, batch: list[_Pending]) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + PUBLISH_TIMEOUT_S
        backoff = Backoff(0.05, 2.0)
        error: VoxfleetError | None = None
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    async with self._redis.pipeline(transaction=False) as pipe:
                        for channel, message, _ in batch:
                            pipe.publish(channel, message)
                        await pipe.execute()
                break
            except (*_REFUSED, RuntimeError) as e:  # not taken by Redis: safe to send again
                if isinstance(e, RuntimeError) and not closed_transport(e):
                    raise
                pause = backoff.next_delay()
                if misconfigured(e) or loop.time() + pause >= deadline:
                    error = failure("publish", e)
                    break
                await asyncio.sleep(pause)
            except REDIS_ERRORS as e:  # no reply in time: it may have been delivered
                error = failure("publish", e)
                break
        for *_, done in batch:
            if done.done():
                continue
            if error is None:
                done.set_result(None)
            else:
                done.set_exception(error)

    async def close(self) -> None:
        await self._tasks.cancel_all()
        for *_, done in self._batch:
            if not done.done():
                done.set_exception(VoxfleetError("the bus is closed"))
        self._batch = []
