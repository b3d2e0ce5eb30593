"""Turn detection: caller audio in, turn signals out.

Frames are cut into VAD windows; each window's speech probability goes to the
endpointer (pipeline/endpointing.py) and the window to the recording of the
current utterance (with a pre-roll). Out come ``SpeechStarted`` (also the cue
for a barge-in), ``Paused`` (start a reply speculatively), ``Resumed`` and
``TurnEnded``, the last two carrying the utterance's audio. The detector also
knows where in the caller's stream the current utterance began, so a resumed
room asks to hear it again from there.

The VAD does not hear silence: once the caller has been quiet (under
QUIET_RMS) for QUIET_WINDOWS windows outside an utterance, quiet windows count
as no speech without running the model (with four calls talking on two
cores, Silero cost ~0.6 CPU-s per call, mostly on the silence of a caller
listening to the agent). Within an utterance every window is heard, so a
pause between words is judged by the model, as before."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from voxfleet.audio import INPUT_RATE, Float32Array, pcm16_to_float
from voxfleet.pipeline.audio import Recording, Windower
from voxfleet.pipeline.endpointing import EndpointConfig, Endpointer, TurnEvent
from voxfleet.pipeline.ports import StreamPosition
from voxfleet.providers.base import VADStream

PREROLL_MS = 320
QUIET_RMS = 0.001  # -60 dBFS: below a quiet room's microphone; speech is -40 to -20
QUIET_WINDOWS = 10  # ~320 ms of it before the VAD stops listening


@dataclass(slots=True, frozen=True)
class SpeechStarted:
    pass


@dataclass(slots=True, frozen=True)
class Paused:
    audio: Float32Array


@dataclass(slots=True, frozen=True)
class Resumed:
    pass


@dataclass(slots=True, frozen=True)
class TurnEnded:
    audio: Float32Array


TurnSignal = SpeechStarted | Paused | Resumed | TurnEnded


class TurnDetector:
    def __init__(
        self,
        vad: VADStream,
        config: EndpointConfig,
        start: StreamPosition,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._vad = vad
        self._windower = Windower(vad.window)
        window_ms = vad.window / INPUT_RATE * 1000
        self._endpointer = Endpointer(config, window_ms)
        self._recording = Recording(int(PREROLL_MS / window_ms))
        self._clock = clock
        self._recent: deque[tuple[StreamPosition, int]] = deque(maxlen=64)  # (frame, samples)
        self._resume_point = start
        self._quiet = 0  # windows in a row under QUIET_RMS
        self.last_voice_at = 0.0  # wall clock of the last window that held speech

    @property
    def in_utterance(self) -> bool:
        return self._recording.active

    @property
    def resume_point(self) -> StreamPosition:
        """The last frame the room has fully accounted for: before the current
        utterance's pre-roll while one is going on, else the newest frame."""
        return self._resume_point

    def push(self, pcm: bytes, position: StreamPosition) -> list[TurnSignal]:
        self._recent.append((position, len(pcm) // 2))
        signals: list[TurnSignal] = []
        threshold = self._endpointer.config.silence_threshold
        for window in self._windower.push(pcm16_to_float(pcm)):
            probability = self._probability(window)
            self._recording.push(window)
            if probability >= threshold:
                self.last_voice_at = self._clock()
            event = self._endpointer.push(probability)
            if event is TurnEvent.SPEECH_START:
                self._recording.start()
                self._resume_point = min(self._resume_point, self._before_preroll())
                signals.append(SpeechStarted())
            elif event is TurnEvent.PAUSE:
                signals.append(Paused(self._recording.audio()))
            elif event is TurnEvent.RESUME:
                signals.append(Resumed())
            elif event is TurnEvent.END:
                signals.append(TurnEnded(self._recording.stop()))
        if not self._recording.active:
            self._resume_point = position
        return signals

    def _probability(self, window: Float32Array) -> float:
        quiet = float(np.dot(window, window)) < QUIET_RMS * QUIET_RMS * len(window)
        self._quiet = self._quiet + 1 if quiet else 0
        if quiet and self._quiet > QUIET_WINDOWS and not self._endpointer.in_speech:
            self._vad.skip(window)
            return 0.0
        return self._vad.probability(window)

    def _before_preroll(self) -> StreamPosition:
        needed = PREROLL_MS * INPUT_RATE // 1000
        for position, samples in reversed(self._recent):
            needed -= samples
            if needed <= 0:
                return StreamPosition(position.epoch, position.seq - 1)
        if self._recent:
            first = self._recent[0][0]
            return StreamPosition(first.epoch, first.seq - 1)
        return self._resume_point
