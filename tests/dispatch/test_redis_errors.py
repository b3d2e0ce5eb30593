"""A write on a connection Redis closed leaves the dispatch classes as the
retryable DispatchUnavailable, under uvloop too (which raises RuntimeError for
it, where asyncio's loop raises a connection error on the next read)."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio import Redis

from voxfleet.aio import closed_transport
from voxfleet.dispatch.redis import RedisRoomQueue
from voxfleet.errors import DispatchUnavailable

pytestmark = pytest.mark.unit

UVLOOP_CLOSED = RuntimeError(
    "unable to perform operation on <TCPTransport closed=True reading=False 0x55>; "
    "the handler is closed"
)


class FailingRedis(Redis):
    """A client whose every command fails with ``error``, as the socket did."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        raise self.error


def test_uvloop_closed_transport_is_told_from_other_runtime_errors() -> None:
    assert closed_transport(UVLOOP_CLOSED)
    assert not closed_transport(RuntimeError("Event loop is closed"))
    assert not closed_transport(OSError("the handler is closed"))


async def test_a_closed_connection_is_dispatch_unavailable() -> None:
    redis = FailingRedis(UVLOOP_CLOSED)
    try:
        with pytest.raises(DispatchUnavailable) as raised:
            await RedisRoomQueue(redis).take("agent-1", timeout=0.1)
        assert raised.value.retryable
    finally:
        await redis.aclose()


async def test_other_runtime_errors_are_not_hidden() -> None:
    redis = FailingRedis(RuntimeError("a bug"))
    try:
        with pytest.raises(RuntimeError, match="a bug"):
            await RedisRoomQueue(redis).take("agent-1", timeout=0.1)
    finally:
        await redis.aclose()
