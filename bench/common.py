"""Shared parts of the benchmarks: a `voxfleet up` server process, spoken
questions, and a microphone that streams in real time."""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from tests.support.server import up_process_handle

from voxfleet.audio import INPUT_RATE, float_to_pcm16, pcm16_to_float, resample
from voxfleet.client import CallClient

FRAME = INPUT_RATE // 50  # 20 ms in samples


def machine() -> str:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def status_mib(pid: int, field: str) -> float:
    """A ``/proc/<pid>/status`` field in MiB (VmRSS now, VmHWM the peak so far)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rss_mib(pid: int) -> float:
    return status_mib(pid, "VmRSS")


def peak_rss_mib(pid: int) -> float:
    return status_mib(pid, "VmHWM")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) process ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def up_server(env: dict[str, str] | None = None) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`voxfleet up` with the local models in a fresh data directory."""
    with up_process_handle(Path(tempfile.mkdtemp(prefix="voxfleet-bench-")), **(env or {})) as up:
        yield up


def piper_question(text: str) -> bytes:
    from voxfleet.providers.local.tts import PiperTTS

    tts = PiperTTS()
    return float_to_pcm16(resample(pcm16_to_float(tts.render(text)), tts.sample_rate, INPUT_RATE))


def speech_end_sample(pcm: bytes, threshold: float = 0.01) -> int:
    """Index just after the last 10 ms block whose RMS is over ``threshold``."""
    audio = pcm16_to_float(pcm)
    block = INPUT_RATE // 100
    blocks = len(audio) // block
    rms = np.sqrt(np.mean(np.square(audio[: blocks * block].reshape(blocks, block)), axis=1))
    loud = np.nonzero(rms > threshold)[0]
    return int((loud[-1] + 1) * block) if len(loud) else 0


class Microphone:
    """Streams 20 ms frames at real time, silence when nothing is queued, the way
    a browser microphone does: sample k is captured at ``start + k / 16000`` and
    sent with its frame once the frame is complete."""

    def __init__(self, call: CallClient) -> None:
        self._call = call
        self._pending: list[bytes] = []
        self._buffer = b""
        self._taken = 0  # samples already cut into frames
        self._task: asyncio.Task[None] | None = None
        self._start = 0.0

    async def __aenter__(self) -> Microphone:
        self._start = time.monotonic()
        self._task = asyncio.create_task(self._run(), name="mic")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def say(self, pcm: bytes) -> float:
        """Queue ``pcm``; returns the moment (monotonic) its speech ends."""
        first = self._taken + (len(self._buffer) + sum(len(p) for p in self._pending)) // 2
        self._pending.append(pcm)
        return self._start + (first + speech_end_sample(pcm)) / INPUT_RATE

    async def _run(self) -> None:
        size = FRAME * 2
        while True:
            delay = self._start + (self._taken + FRAME) / INPUT_RATE - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            while len(self._buffer) < size and self._pending:
                self._buffer += self._pending.pop(0)
            frame, self._buffer = self._buffer[:size], self._buffer[size:]
            frame += b"\x00" * (size - len(frame))
            self._taken += FRAME
            ws = self._call.ws
            if ws is not None:
                await ws.send(frame)


async def metrics_of(base: str, name: str) -> dict[str, float]:
    """The samples of the server's ``/metrics`` whose line starts with ``name``."""
    import httpx

    async with httpx.AsyncClient() as http:
        text = (await http.get(f"{base}/metrics")).text
    return {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line.startswith(name)
    }


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")
