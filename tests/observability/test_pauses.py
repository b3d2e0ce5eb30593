"""Garbage-collector pauses and event-loop lag are measured and reported, and
start-up objects can be kept out of full collections."""

from __future__ import annotations

import asyncio
import gc
import logging
import time

import pytest
from prometheus_client import REGISTRY

from voxfleet.observability.pauses import (
    GcPauses,
    RecentLag,
    freeze_startup_objects,
    watch_loop_lag,
)

pytestmark = pytest.mark.unit


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_every_collection_is_timed_while_installed() -> None:
    before = _sample("voxfleet_gc_pause_seconds_count", generation="2")
    with GcPauses() as pauses:
        gc.collect()
    gc.collect()  # uninstalled: not counted
    assert _sample("voxfleet_gc_pause_seconds_count", generation="2") == before + 1
    assert pauses.longest is not None
    assert pauses.longest[1] == 2
    assert pauses not in gc.callbacks


def test_a_slow_collection_is_logged_at_the_next_report(caplog: pytest.LogCaptureFixture) -> None:
    with GcPauses(report_over=0.0) as pauses:
        gc.collect()
    assert "long garbage collection" not in caplog.text  # never from inside the collector
    with caplog.at_level(logging.WARNING):
        pauses.report()
        pauses.report()  # each pause once
    slow = [r for r in caplog.records if r.getMessage() == "long garbage collection"]
    assert len(slow) == 1
    assert slow[0].fields["generation"] == 2


async def test_a_held_loop_is_measured_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    count = "voxfleet_event_loop_lag_seconds_count"
    before_n, before_sum = _sample(count), _sample("voxfleet_event_loop_lag_seconds_sum")
    watcher = asyncio.create_task(watch_loop_lag(interval=0.01, report_over=0.05))
    await asyncio.sleep(0)  # the watcher's timer is set
    with caplog.at_level(logging.WARNING):
        time.sleep(0.2)  # noqa: ASYNC251 - holding the loop is the point
        # The watcher's timer expired long before this one: it has run by then.
        await asyncio.sleep(0.01)
    watcher.cancel()
    with pytest.raises(asyncio.CancelledError):
        await watcher
    # The loop was held for 0.2 s past a timer due in 0.01 s.
    assert _sample(count) > before_n
    assert _sample("voxfleet_event_loop_lag_seconds_sum") - before_sum >= 0.19
    assert "event loop held" in caplog.text


def test_frozen_objects_leave_the_oldest_generation() -> None:
    try:
        frozen = freeze_startup_objects()
        assert frozen == gc.get_freeze_count() > 0
        assert gc.get_objects(generation=2) == []
    finally:
        gc.unfreeze()
    assert gc.get_freeze_count() == 0


def test_recent_lag_is_the_worst_of_the_last_ticks_only() -> None:
    recent = RecentLag(size=3)
    assert recent.worst_ms() is None  # not measured: the heartbeat says so
    for lag in (0.2, 0.001, 0.002):
        recent.observe(lag)
    assert recent.worst_ms() == 200.0
    recent.observe(0.003)  # the 200 ms tick is now older than the window
    assert recent.worst_ms() == 3.0
