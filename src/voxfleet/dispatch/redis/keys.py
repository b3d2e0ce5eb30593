"""Redis keys of the dispatch layer, and what every Redis call here shares: its
errors leave as DispatchUnavailable (retryable), its replies may be bytes."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from redis.exceptions import RedisError

from voxfleet.errors import DispatchUnavailable

P = ParamSpec("P")
R = TypeVar("R")


def wrapped(
    method: Callable[P, Coroutine[Any, Any, R]],
) -> Callable[P, Coroutine[Any, Any, R]]:
    """Redis errors leave this module as DispatchUnavailable (retryable)."""

    @functools.wraps(method)
    async def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await method(*args, **kwargs)
        except (RedisError, OSError) as e:
            raise DispatchUnavailable(f"redis: {e}") from e

    return call


QUEUE = "vf:queue"
GROUP = "agents"
ROOMS = "vf:rooms"
AGENTS = "vf:agents"
STATE_TTL_S = 6 * 3600
CLAIM_IDLE_MS = 5000  # a job taken but not done for this long goes to another agent


def _room(room_id: str, part: str) -> str:
    return f"vf:room:{room_id}:{part}"


def room_key(room_id: str, part: str) -> str:
    return f"vf:room:{room_id}:{part}"


def text(value: Any) -> str:
    """Redis replies are bytes or str depending on the client's decoding."""
    return value.decode() if isinstance(value, bytes) else str(value)
