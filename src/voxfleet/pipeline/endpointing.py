"""Endpointing: turns per-window speech probabilities into turn events.

SPEECH_START once speech has lasted ``min_speech_ms``; PAUSE after
``speculate_ms`` of silence (the reply is prepared speculatively from here);
RESUME if speech comes back before the end; END after ``end_ms`` of silence
(the caller's turn is over and the prepared reply is released)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class TurnEvent(StrEnum):
    SPEECH_START = "speech_start"
    PAUSE = "pause"
    RESUME = "resume"
    END = "end"


@dataclass(slots=True, frozen=True)
class EndpointConfig:
    speech_threshold: float = 0.5
    silence_threshold: float = 0.35
    min_speech_ms: float = 96.0
    speculate_ms: float = 64.0
    end_ms: float = 384.0
    max_utterance_ms: float = 20000.0


class Endpointer:
    def __init__(self, config: EndpointConfig, window_ms: float) -> None:
        self.config = config
        self.window_ms = window_ms
        self.in_speech = False
        self._speech_run = 0.0
        self._silence_run = 0.0
        self._utterance = 0.0
        self._paused = False

    def push(self, probability: float) -> TurnEvent | None:
        c, w = self.config, self.window_ms
        if not self.in_speech:
            self._speech_run = self._speech_run + w if probability >= c.speech_threshold else 0.0
            if self._speech_run >= c.min_speech_ms:
                self.in_speech = True
                self._silence_run = 0.0
                self._utterance = self._speech_run
                self._paused = False
                return TurnEvent.SPEECH_START
            return None
        self._utterance += w
        event: TurnEvent | None = None
        if probability < c.silence_threshold:
            self._silence_run += w
        elif probability >= c.speech_threshold or self._silence_run < c.speculate_ms:
            # Hysteresis: probabilities between the thresholds keep the current run.
            self._silence_run = 0.0
            if self._paused:
                self._paused = False
                event = TurnEvent.RESUME
        if self._silence_run >= c.end_ms or self._utterance >= c.max_utterance_ms:
            self.in_speech = False
            self._speech_run = 0.0
            return TurnEvent.END
        if self._silence_run >= c.speculate_ms and not self._paused:
            self._paused = True
            return TurnEvent.PAUSE
        return event
