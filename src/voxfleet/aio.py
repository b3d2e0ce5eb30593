"""Task helpers: every background task is named, referenced and cancelled with a
deadline, so nothing is left running or silently dropped."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Coroutine
from typing import Any, TypeVar

from voxfleet.observability.logging import get_logger

T = TypeVar("T")
log = get_logger(__name__)


class TaskSet:
    """Owns a set of tasks; failures are logged, never lost."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._tasks: set[asyncio.Task[object]] = set()

    def spawn(self, coro: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
        task = asyncio.create_task(coro, name=f"{self.name}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[object]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.error("task failed", task=task.get_name(), error=repr(exc))

    def __len__(self) -> int:
        return len(self._tasks)

    async def cancel_all(self, timeout: float = 5.0) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:
                log.error("task ignored cancellation", task=task.get_name())


async def cancel_and_wait(task: asyncio.Task[object] | None, timeout: float = 5.0) -> None:
    """Cancel ``task`` and wait (bounded) until it has finished."""
    if task is None or task.done():
        if task is not None and not task.cancelled():
            with contextlib.suppress(Exception):
                task.exception()
        return
    task.cancel()
    await asyncio.wait([task], timeout=timeout)
    if task.done() and not task.cancelled():
        with contextlib.suppress(Exception):
            task.exception()


def closed_transport(error: BaseException) -> bool:
    """True for uvloop's error on a write to a socket that was already closed
    (by a Redis restart, say). asyncio's own loop drops such a write and the
    next read fails with a connection error; uvloop raises RuntimeError at
    once, before anything was sent, which client libraries (redis-py) let
    through. Callers treat it as the connection error it is."""
    return isinstance(error, RuntimeError) and "the handler is closed" in str(error)


class Backoff:
    """Delays for a retry loop: ``initial`` doubling up to ``maximum``, each with
    jitter (so processes that lost Redis together do not come back in lockstep);
    ``reset()`` after a success. Every retry loop in voxfleet sleeps through one."""

    def __init__(self, initial: float = 0.05, maximum: float = 2.0) -> None:
        self.initial = initial
        self.maximum = maximum
        self.failures = 0

    def next_delay(self) -> float:
        delay = min(self.initial * 2.0**self.failures, self.maximum)
        self.failures += 1
        return delay * random.uniform(0.5, 1.0)

    async def sleep(self) -> None:
        await asyncio.sleep(self.next_delay())

    def reset(self) -> None:
        self.failures = 0
