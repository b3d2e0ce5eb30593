"""The agent's model scheduler: one job at a time, the most urgent first (and
an urgency that changes while its job waits moves it), first come first
served within a level, a job nobody waits for any more never runs, and a
job's error reaches the one who asked."""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from pathlib import Path

import pytest

from voxfleet.providers.local.scheduler import ModelScheduler, scheduler, usable_cores
from voxfleet.providers.urgency import BACKGROUND, Level, Urgency, current, use

pytestmark = pytest.mark.unit


class Gate:
    """A first job that holds the scheduler until opened, so others queue."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.opened = threading.Event()

    def __call__(self) -> str:
        self.started.set()
        assert self.opened.wait(10)
        return "gate"


async def queue_behind_gate(models: ModelScheduler) -> tuple[Gate, asyncio.Task[str]]:
    gate = Gate()
    held = asyncio.create_task(models.run(gate, Urgency(Level.CRITICAL)))
    assert await asyncio.to_thread(gate.started.wait, 10)
    return gate, held


async def test_the_most_urgent_job_runs_first_and_equals_in_order() -> None:
    models = ModelScheduler(1, "test")
    gate, held = await queue_behind_gate(models)
    ran: list[str] = []

    def job(name: str) -> str:
        ran.append(name)
        return name

    tail, critical = Urgency(Level.TAIL), Urgency(Level.CRITICAL)
    jobs = [
        asyncio.create_task(models.run(lambda: job("prefill"), BACKGROUND)),
        asyncio.create_task(models.run(lambda: job("tail-1"), tail)),
        asyncio.create_task(models.run(lambda: job("tail-2"), tail)),
        asyncio.create_task(models.run(lambda: job("critical"), critical)),
    ]
    await asyncio.sleep(0.05)
    assert models.waiting == 4
    gate.opened.set()
    assert await held == "gate"
    assert await asyncio.gather(*jobs) == ["prefill", "tail-1", "tail-2", "critical"]
    assert ran == ["critical", "tail-1", "tail-2", "prefill"]


async def test_a_reply_decided_while_its_job_waits_goes_first() -> None:
    models = ModelScheduler(1, "test")
    gate, held = await queue_behind_gate(models)
    ran: list[str] = []
    other_tail = Urgency(Level.TAIL)
    speculative = Urgency(Level.TAIL)
    first = asyncio.create_task(models.run(lambda: ran.append("other room's tail"), other_tail))
    second = asyncio.create_task(models.run(lambda: ran.append("the decided reply"), speculative))
    await asyncio.sleep(0.05)
    speculative.decided()  # the caller's turn ended while its transcription waited
    gate.opened.set()
    await asyncio.gather(held, first, second)
    assert ran == ["the decided reply", "other room's tail"]
    speculative.first_audio_ready()
    speculative.decided()  # a reply whose first audio is ready stays the tail
    assert speculative.level is Level.TAIL


async def test_a_job_nobody_waits_for_never_runs() -> None:
    models = ModelScheduler(1, "test")
    gate, held = await queue_behind_gate(models)
    ran: list[str] = []
    dropped = asyncio.create_task(models.run(lambda: ran.append("barged in on")))
    kept = asyncio.create_task(models.run(lambda: ran.append("kept")))
    await asyncio.sleep(0.05)
    dropped.cancel()
    await asyncio.sleep(0.05)
    gate.opened.set()
    await asyncio.gather(held, kept)
    assert dropped.cancelled()
    assert ran == ["kept"]
    assert models.waiting == 0


async def test_errors_reach_the_caller_and_the_scheduler_goes_on() -> None:
    models = ModelScheduler(1, "test")

    def broken() -> None:
        raise ValueError("model exploded")

    with pytest.raises(ValueError, match="model exploded"):
        await models.run(broken)
    assert await models.run(lambda: 42) == 42


async def test_the_current_urgency_is_the_tasks_own() -> None:
    assert current().level is Level.TAIL  # nobody said: the tail's place
    reply = Urgency(Level.CRITICAL)

    async def producing() -> Level:
        use(reply)
        await asyncio.sleep(0)
        return current().level

    assert await asyncio.create_task(producing()) is Level.CRITICAL
    assert current().level is Level.TAIL  # the other task's choice stays its own


async def test_two_workers_run_two_lanes_at_once_but_never_one_lane_twice() -> None:
    models = ModelScheduler(2, "test")
    running: dict[str, int] = {"a": 0, "b": 0}
    most = {"a": 0, "b": 0, "both": 0}
    lock = threading.Lock()

    def job(lane: str) -> None:
        with lock:
            running[lane] += 1
            most[lane] = max(most[lane], running[lane])
            most["both"] = max(most["both"], running["a"] + running["b"])
        threading.Event().wait(0.02)
        with lock:
            running[lane] -= 1

    await asyncio.gather(
        *(models.run(functools.partial(job, lane), lane=lane) for lane in "abababab")
    )
    assert most == {"a": 1, "b": 1, "both": 2}


def test_workers_follow_the_cgroup_cpu_limit(tmp_path: Path) -> None:
    cores = len(os.sched_getaffinity(0))
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("150000 100000\n")  # a limit of 1.5 CPUs: two workers at most
    assert usable_cores(cpu_max) == min(cores, 2)
    cpu_max.write_text("max 100000\n")
    assert usable_cores(cpu_max) == cores
    assert usable_cores(tmp_path / "missing") == cores


async def test_a_job_may_use_every_core_only_while_no_other_lane_runs_or_waits() -> None:
    models = ModelScheduler(2, "test")
    lane, other = object(), object()
    widths: list[int] = []
    alone = asyncio.ensure_future(models.run(lambda: widths.append(models.width(lane)), lane=lane))
    await alone
    assert widths == [2]

    gate = Gate()  # a job of another lane runs: one thread
    held = asyncio.ensure_future(models.run(gate, lane=other))
    assert await asyncio.to_thread(gate.started.wait, 10)
    await models.run(lambda: widths.append(models.width(lane)), lane=lane)
    gate.opened.set()
    await held
    assert widths == [2, 1]

    gate = Gate()  # its own lane's next job waits behind it: still every core
    first = asyncio.ensure_future(models.run(gate, lane=lane))
    assert await asyncio.to_thread(gate.started.wait, 10)
    queued = asyncio.ensure_future(models.run(lambda: None, lane=lane))
    await asyncio.sleep(0)  # it queues
    assert models.waiting == 1
    assert models.width(lane) == 2 and models.width(other) == 1
    gate.opened.set()
    await asyncio.gather(first, queued)
    assert ModelScheduler(1, "one").width(lane) == 1


def test_numpys_blas_runs_on_the_calling_thread_once_the_models_are_scheduled() -> None:
    import numpy as np
    from threadpoolctl import threadpool_info

    np.ones((64, 64)) @ np.ones((64, 64))  # BLAS loaded
    scheduler()
    blas = [pool for pool in threadpool_info() if pool["user_api"] == "blas"]
    assert blas and all(pool["num_threads"] == 1 for pool in blas)
