"""What the LiveKit link tests share: a real audio source that keeps what it
was given, and the data packets the agent published."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from livekit import rtc


class RecordingSource(rtc.AudioSource):
    """A real audio source that also keeps what it was given."""

    def __init__(self, sample_rate: int) -> None:
        super().__init__(sample_rate, 1)
        self.frames: list[rtc.AudioFrame] = []

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        self.frames.append(frame)
        await super().capture_frame(frame)


class Packets:
    """The data packets the agent published, as a client parses them."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.changed = asyncio.Event()

    async def __call__(self, payload: bytes) -> None:
        self.sent.append(json.loads(payload))
        self.changed.set()

    async def wait_for(self, predicate: Any, timeout: float = 10.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                for m in self.sent:
                    if predicate(m):
                        return m
                self.changed.clear()
                await self.changed.wait()
