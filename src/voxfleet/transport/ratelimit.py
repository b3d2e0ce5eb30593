"""Flood control for caller audio: two token buckets, one on seconds of audio
(a microphone produces one second per second; network jitter is absorbed by a
burst allowance) and one on frame count (tiny frames are cheap to send but not
to relay)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Bucket:
    rate: float
    burst: float
    level: float = field(init=False)
    at: float | None = None

    def __post_init__(self) -> None:
        self.level = self.burst

    def take(self, amount: float, now: float) -> bool:
        if self.at is not None:
            self.level = min(self.burst, self.level + (now - self.at) * self.rate)
        self.at = now
        if amount > self.level + 1e-9:  # float sums of 20 ms frames must not refuse one
            return False
        self.level -= amount
        return True


class AudioRateLimit:
    def __init__(
        self,
        audio_burst_s: float = 2.0,
        realtime_factor: float = 1.1,
        frames_per_s: float = 100.0,
        frame_burst: float = 200.0,
    ) -> None:
        self._audio = Bucket(rate=realtime_factor, burst=audio_burst_s)
        self._frames = Bucket(rate=frames_per_s, burst=frame_burst)

    def admit(self, seconds: float, now: float) -> bool:
        return self._frames.take(1.0, now) and self._audio.take(seconds, now)
