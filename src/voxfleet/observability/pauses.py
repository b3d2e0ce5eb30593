"""Where a process's event loop stops: garbage-collector pauses and event-loop lag.

Every role relays or schedules in real time on one event loop, so anything that
holds the loop (a full garbage collection, a blocking call) delays every room
at once. ``GcPauses`` times each collection through ``gc.callbacks``;
``watch_loop_lag`` measures how late a periodic timer fires. Both feed
histograms on /metrics, and a pause over ``report_over`` is logged.
``freeze_startup_objects`` keeps what start-up made out of later full collections."""

from __future__ import annotations

import asyncio
import gc
import time
from collections import deque

from voxfleet.observability.logging import get_logger
from voxfleet.observability.metrics import GC_PAUSE_SECONDS, LOOP_LAG_SECONDS

log = get_logger(__name__)

REPORT_OVER_S = 0.05  # a pause this long is worth a log line
LAG_INTERVAL_S = 0.05


class RecentLag:
    """The worst event-loop lag of the last ``size`` timer ticks (about five
    seconds at the default interval): what an agent reports in its heartbeat.
    None until ``watch_loop_lag`` runs (served under `voxfleet`, not in-process)."""

    def __init__(self, size: int = 100) -> None:
        self._lags: deque[float] = deque(maxlen=size)

    def observe(self, lag: float) -> None:
        self._lags.append(lag)

    def worst_ms(self) -> float | None:
        return round(max(self._lags) * 1000, 1) if self._lags else None


RECENT_LAG = RecentLag()


def freeze_startup_objects() -> int:
    """Move every object alive now (modules, app, routes, settings: about 150,000
    in a landing) out of the collector's sight; returns how many. A full
    collection walks every tracked object, and on these 2 cores walking the
    start-up objects held the loop for 80-150 ms, delaying every room's audio.
    What calls create later is collected as before."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


class GcPauses:
    """Times every collection while installed (``install``/``uninstall``, or as a
    context manager). Logging waits for the next ``report`` (a log call inside
    the collector would allocate while it runs)."""

    def __init__(self, report_over: float = REPORT_OVER_S) -> None:
        self.report_over = report_over
        self.longest: tuple[float, int, int] | None = None  # (seconds, generation, collected)
        self._started = 0.0
        self._slow: list[tuple[float, int, int]] = []

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        now = time.perf_counter()
        if phase == "start":
            self._started = now
            return
        seconds = now - self._started
        generation = int(info["generation"])
        GC_PAUSE_SECONDS.labels(str(generation)).observe(seconds)
        pause = (seconds, generation, int(info["collected"]))
        if self.longest is None or seconds > self.longest[0]:
            self.longest = pause
        if seconds > self.report_over:
            self._slow.append(pause)

    def report(self) -> None:
        """Log the slow collections seen since the last report."""
        slow, self._slow = self._slow, []
        for seconds, generation, collected in slow:
            log.warning(
                "long garbage collection",
                pause_ms=round(seconds * 1000, 1),
                generation=generation,
                collected=collected,
                objects=len(gc.get_objects(generation)),
            )

    def install(self) -> GcPauses:
        if self._callback not in gc.callbacks:
            gc.callbacks.append(self._callback)
        return self

    def uninstall(self) -> None:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)

    def __enter__(self) -> GcPauses:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.uninstall()


async def watch_loop_lag(
    interval: float = LAG_INTERVAL_S,
    report_over: float = REPORT_OVER_S,
    gc_pauses: GcPauses | None = None,
) -> None:
    """Run until cancelled: every ``interval`` s, record how late the timer fired
    (and report slow collections); log a lag over ``report_over``, with the CPU
    time the process used meanwhile: about the lag when its own work held the
    loop, much less when it waited for a core."""
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + interval
        cpu = time.process_time()
        await asyncio.sleep(interval)
        lag = max(0.0, loop.time() - due)
        LOOP_LAG_SECONDS.observe(lag)
        RECENT_LAG.observe(lag)
        if lag > report_over:
            cpu_ms = (time.process_time() - cpu) * 1000
            log.warning(
                "event loop held",
                lag_ms=round(lag * 1000, 1),
                interval_ms=round((interval + lag) * 1000, 1),
                cpu_ms=round(cpu_ms, 1),
            )
        if gc_pauses is not None:
            gc_pauses.report()
