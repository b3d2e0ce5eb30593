"""One scheduler for the local models of an agent process.

Every room's transcription, generation step and synthesis runs here, on a
few worker threads (one per core by default; each model runs a job on one
thread, which costs 30-40% less CPU than spreading it over two: see
docs/performance.md), the most urgent first (providers/urgency.py): the work
between a caller's end of speech and the first audio of the reply goes before
the tail of another room's reply, which goes before prefill and warm-up.
Within a level, first come first served. Generation is cut in slices of one
token, so a critical job waits behind at most one token of another room's
reply, or one clause of synthesis, or one transcription.

Jobs of one lane run one at a time, in order: a generation's tokens (its
llama.cpp context is not thread-safe), and each model that must not run
twice at once. A job whose caller stopped waiting before it started (a
barge-in, a speculative transcription the caller talked over) is dropped
unrun.

Why not a thread pool per model, as before: on two cores, four rooms' replies
then share the cores evenly, so every caller waits for everyone else's tail;
and a job cannot be taken back from a thread pool."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar, cast

from threadpoolctl import threadpool_limits

from voxfleet.observability.metrics import (
    MODEL_BUSY_SECONDS,
    MODEL_CPU_SECONDS,
    MODEL_QUEUE_SECONDS,
)
from voxfleet.providers.urgency import Urgency, current

T = TypeVar("T")
LOAD_WINDOW_S = 10.0  # the load an agent reports and budgets by: its models' last seconds


@dataclass(eq=False)
class _Job:
    urgency: Urgency
    seq: int
    work: Callable[[], object]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[object]
    lane: object
    kind: str
    queued_at: float = field(default_factory=time.perf_counter)

    def deliver(self, result: object, error: BaseException | None) -> None:
        """Hand the outcome to the waiting coroutine (on its loop's thread)."""

        def settle() -> None:
            if self.future.done():  # it stopped waiting while the job ran
                return
            if error is not None:
                self.future.set_exception(error)
            else:
                self.future.set_result(result)

        self.loop.call_soon_threadsafe(settle)


class BusyWindow:
    """How long the workers were busy over the last ``seconds`` (jobs running
    now count up to now). Not thread-safe: the scheduler's lock guards it."""

    def __init__(self, seconds: float = LOAD_WINDOW_S) -> None:
        self.seconds = seconds
        self._spans: deque[tuple[float, float]] = deque()
        self._open: dict[int, float] = {}

    def start(self, key: int, now: float) -> None:
        self._open[key] = now

    def finish(self, key: int, now: float) -> None:
        self._spans.append((self._open.pop(key, now), now))
        self._trim(now)

    def busy(self, now: float) -> float:
        self._trim(now)
        since = now - self.seconds
        closed = sum(end - max(begin, since) for begin, end in self._spans)
        return closed + sum(now - max(begin, since) for begin in self._open.values())

    def _trim(self, now: float) -> None:
        while self._spans and self._spans[0][1] <= now - self.seconds:
            self._spans.popleft()


class ModelScheduler:
    def __init__(self, workers: int = 1, name: str = "models") -> None:
        self._name = name
        self._workers = max(1, workers)
        self._jobs: list[_Job] = []
        self._running: set[int] = set()  # lanes with a job running (their id())
        self._ready = threading.Condition()
        self._seq = itertools.count()
        self._threads: list[threading.Thread] = []
        self._busy = BusyWindow()

    async def run(
        self,
        work: Callable[[], T],
        urgency: Urgency | None = None,
        lane: object = None,
        kind: str = "model",
    ) -> T:
        """``work()`` on a models' thread, when its turn comes; its result.
        ``lane``: jobs of the same lane never run at once (None: any); ``kind``
        names the model in the metrics."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        lane = object() if lane is None else lane  # a job of its own
        job = _Job(urgency or current(), next(self._seq), work, loop, future, lane, kind)
        with self._ready:
            self._jobs.append(job)
            self._start()
            self._ready.notify()
        try:
            return cast(T, await job.future)
        except asyncio.CancelledError:
            with self._ready:
                if job in self._jobs:  # not started: it never runs
                    self._jobs.remove(job)
            raise

    @property
    def waiting(self) -> int:
        """Jobs queued and not started."""
        with self._ready:
            return len(self._jobs)

    def width(self, lane: object) -> int:
        """Threads a job of ``lane`` that is about to run on a worker may use:
        every worker's core while no job of another lane runs or waits (its own
        lane's queued jobs cannot run beside it anyway), else one. One call on
        its own answers sooner; several calls keep one thread per job, which
        costs less CPU per job."""
        with self._ready:
            others = sum(1 for j in self._jobs if j.lane is not lane)
            alone = len(self._running) <= 1 and others == 0
        return self._workers if alone else 1

    def load(self) -> float:
        """The share of the workers' time spent on jobs over the last
        ``LOAD_WINDOW_S`` seconds: 0 idle, 1 every worker busy all the time."""
        with self._ready:
            busy = self._busy.busy(time.monotonic())
        return min(1.0, busy / (self._workers * self._busy.seconds))

    def _start(self) -> None:
        while len(self._threads) < self._workers:
            name = f"{self._name}-{len(self._threads)}"
            thread = threading.Thread(target=self._serve, name=name, daemon=True)
            self._threads.append(thread)
            thread.start()

    def _next(self) -> _Job:
        with self._ready:
            while True:
                free = [j for j in self._jobs if id(j.lane) not in self._running]
                if free:
                    job = min(free, key=lambda j: (j.urgency.level, j.seq))
                    self._jobs.remove(job)
                    self._running.add(id(job.lane))
                    self._busy.start(job.seq, time.monotonic())
                    return job
                self._ready.wait()

    def _done(self, job: _Job) -> None:
        with self._ready:
            self._running.discard(id(job.lane))
            self._busy.finish(job.seq, time.monotonic())
            self._ready.notify_all()

    def _serve(self) -> None:
        while True:
            job = self._next()
            started, cpu = time.perf_counter(), time.thread_time()
            level = job.urgency.level.name.lower()
            MODEL_QUEUE_SECONDS.labels(level).observe(started - job.queued_at)
            try:
                result = job.work()
            except BaseException as e:  # handed to the waiting coroutine, which raises it
                job.deliver(None, e)
            else:
                job.deliver(result, None)
            finally:
                self._done(job)
            spent = time.perf_counter() - started
            MODEL_BUSY_SECONDS.labels(job.kind, level).inc(spent)
            MODEL_CPU_SECONDS.labels(job.kind).inc(time.thread_time() - cpu)


_shared: list[ModelScheduler] = []
_making = threading.Lock()


def models_load() -> float | None:
    """The load of the process's local models (ModelScheduler.load), or None
    when it has none (hosted providers only: their work is not our CPU)."""
    with _making:
        models = _shared[0] if _shared else None
    return None if models is None else models.load()


def scheduler(workers: int = 0) -> ModelScheduler:
    """The process's scheduler: every local model of an agent process shares it.
    The first call makes it, with ``workers`` threads (0: one per core this
    process may use)."""
    with _making:
        if not _shared:
            # A job's numpy BLAS calls (Whisper's mel filters) stay on its thread:
            # OpenBLAS's own threads spin after every call, ~0.4 s of CPU per
            # call of four questions (docs/performance.md).
            threadpool_limits(1, user_api="blas")
            _shared.append(ModelScheduler(workers or usable_cores()))
        return _shared[0]


def usable_cores(cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """Cores this process may use: its CPU affinity, capped by its cgroup's CPU
    quota (a Kubernetes CPU limit of 2 on a 16-core node means 2), rounded up."""
    cores = len(os.sched_getaffinity(0))
    with contextlib.suppress(OSError, ValueError):
        quota, period = cpu_max.read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    return cores
