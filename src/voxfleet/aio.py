"""Task helpers: every background task is named, referenced and cancelled with a
deadline, so nothing is left running or silently dropped."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any, TypeVar

from voxfleet.observability.logging import get_logger

T = TypeVar("T")
log = get_logger(__name__)


class TaskSet:
    """Owns a set of tasks; failures are logged, never lost."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
        task = asyncio.create_task(coro, name=f"{self.name}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
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


async def cancel_and_wait(task: asyncio.Task[Any] | None, timeout: float = 5.0) -> None:
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
