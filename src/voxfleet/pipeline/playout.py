"""Paced playout of agent audio: frames leave at real time plus a small lead, so
the caller's buffer stays small, an interrupt silences the agent within the lead,
and the agent knows which words the caller has actually heard."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

FRAME_MS = 20
LEAD_S = 0.12


@dataclass(slots=True)
class _Segment:
    text: str
    start: float  # seconds of agent audio before this segment
    end: float


class Playout:
    def __init__(
        self,
        send: Callable[[bytes], Awaitable[None]],
        sample_rate: int,
        lead_s: float = LEAD_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._send = send
        self._rate = sample_rate
        self._frame_bytes = sample_rate * FRAME_MS // 1000 * 2
        self._lead = lead_s
        self._clock = clock
        self._t0: float | None = None  # clock time at which audio position 0 plays
        self._sent_s = 0.0
        self._segments: list[_Segment] = []

    def played_seconds(self) -> float:
        """Agent audio the caller has heard by now (an estimate: the caller plays
        what it receives at once, at real time)."""
        if self._t0 is None:
            return 0.0
        return max(0.0, min(self._sent_s, self._clock() - self._t0))

    async def play(self, pcm: bytes, text: str) -> None:
        """Send ``pcm`` paced at real time; ``text`` is what it says."""
        now = self._clock()
        if self._t0 is None or now - self._t0 > self._sent_s:
            # First audio, or the caller's buffer ran dry: playback restarts now.
            self._t0 = now - self._sent_s
        start = self._sent_s
        self._segments.append(_Segment(text, start, start + len(pcm) / 2 / self._rate))
        for offset in range(0, len(pcm), self._frame_bytes):
            frame = pcm[offset : offset + self._frame_bytes]
            ahead = self._t0 + self._sent_s - self._lead - self._clock()
            if ahead > 0:
                await asyncio.sleep(ahead)
            await self._send(frame)
            self._sent_s += len(frame) / 2 / self._rate

    async def drain(self) -> None:
        """Wait until the caller has heard everything sent."""
        if self._t0 is not None:
            remaining = self._t0 + self._sent_s - self._clock()
            if remaining > 0:
                await asyncio.sleep(remaining)

    def heard_text(self) -> str:
        """The words the caller has heard: whole segments, plus the share of the
        current one's words proportional to the time played."""
        played = self.played_seconds()
        words: list[str] = []
        for seg in self._segments:
            if played >= seg.end - 1e-3:
                words.extend(seg.text.split())
            elif played > seg.start:
                seg_words = seg.text.split()
                share = (played - seg.start) / max(seg.end - seg.start, 1e-6)
                words.extend(seg_words[: int(len(seg_words) * share)])
        return " ".join(words)
