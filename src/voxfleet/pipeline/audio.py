"""Fixed-size windowing of a stream of variable-length frames, and the caller's
current utterance."""

from __future__ import annotations

import numpy as np

from voxfleet.audio import Float32Array


class Windower:
    """Cuts an incoming stream of frames of any length into windows of ``size``."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._pending = np.zeros(0, dtype=np.float32)

    def push(self, samples: Float32Array) -> list[Float32Array]:
        buf = np.concatenate([self._pending, samples]) if self._pending.size else samples
        count = len(buf) // self.size
        windows = [buf[i * self.size : (i + 1) * self.size] for i in range(count)]
        self._pending = buf[count * self.size :].copy()
        return windows


class Recording:
    """The caller's current utterance plus a short pre-roll from before the VAD
    fired (the VAD needs a few windows to be sure; the words started earlier)."""

    def __init__(self, preroll_windows: int) -> None:
        self._preroll: list[Float32Array] = []
        self._preroll_windows = preroll_windows
        self._windows: list[Float32Array] | None = None

    @property
    def active(self) -> bool:
        return self._windows is not None

    def push(self, window: Float32Array) -> None:
        if self._windows is not None:
            self._windows.append(window)
            return
        self._preroll.append(window)
        if len(self._preroll) > self._preroll_windows:
            self._preroll.pop(0)

    def start(self) -> None:
        self._windows = list(self._preroll)
        self._preroll = []

    def audio(self) -> Float32Array:
        if not self._windows:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(self._windows)

    def stop(self) -> Float32Array:
        audio = self.audio()
        self._windows = None
        return audio
