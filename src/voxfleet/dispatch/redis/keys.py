"""Redis keys of the dispatch layer, and what every Redis call here shares: an
outage leaves as DispatchUnavailable (retryable: the work waits for Redis), any
other Redis error (a script that fails, a wrong type) as a plain VoxfleetError,
so a bug is not mistaken for an outage and retried forever."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from voxfleet.aio import closed_transport
from voxfleet.errors import DispatchUnavailable, VoxfleetError

P = ParamSpec("P")
R = TypeVar("R")
# Not reachable, not answering, or a replica that is not (yet) the primary: a
# failover in progress. BusyLoadingError is a ConnectionError.
_OUTAGE = (RedisConnectionError, RedisTimeoutError, ReadOnlyError, OSError)


def wrapped(
    method: Callable[P, Coroutine[Any, Any, R]],
) -> Callable[P, Coroutine[Any, Any, R]]:
    @functools.wraps(method)
    async def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await method(*args, **kwargs)
        except _OUTAGE as e:
            raise DispatchUnavailable(f"redis: {e}") from e
        except RedisError as e:
            raise VoxfleetError(f"redis refused a dispatch command: {e}", code="dispatch") from e
        except RuntimeError as e:
            # uvloop's error for a write on a connection Redis already closed:
            # nothing was sent, so it is the outage it looks like.
            if not closed_transport(e):
                raise
            raise DispatchUnavailable(f"redis: connection closed: {e}") from e

    return call


def room_key(room_id: str, part: str) -> str:
    return f"vf:room:{room_id}:{part}"


# What a Redis reply holds: bytes, or str when the client decodes replies.
Reply = bytes | str
# One entry of a Stream: its id and its fields.
StreamEntry = tuple[Reply, dict[Reply, Reply]]


def text(value: object) -> str:
    """Redis replies are bytes or str depending on the client's decoding."""
    return value.decode() if isinstance(value, bytes) else str(value)
