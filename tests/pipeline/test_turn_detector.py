"""The turn detector does not run the VAD on a silent caller, and hears the
same turns as a detector that runs it on every window."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from tests.support.speech import espeak_speech, piper_speech
from voxfleet.audio import Float32Array
from voxfleet.pipeline import turns
from voxfleet.pipeline.endpointing import EndpointConfig
from voxfleet.pipeline.ports import StreamPosition
from voxfleet.pipeline.turns import QUIET_WINDOWS, TurnDetector
from voxfleet.providers.base import VADStream
from voxfleet.providers.scripted import EnergyVAD

FRAME = 640  # bytes: 20 ms at 16 kHz


class Counted(VADStream):
    """A VAD stream that counts the windows it judged and the ones it skipped."""

    def __init__(self, inner: VADStream) -> None:
        self.window = inner.window
        self._inner = inner
        self.judged: list[int] = []  # window numbers
        self.skipped = 0

    def probability(self, window: Float32Array) -> float:
        self.judged.append(len(self.judged) + self.skipped)
        return self._inner.probability(window)

    def skip(self, window: Float32Array) -> None:
        self.skipped += 1
        self._inner.skip(window)


def silence(seconds: float) -> bytes:
    return bytes(int(seconds * 16000) * 2)


def tone(seconds: float, level: float = 0.3) -> bytes:
    t = np.arange(int(seconds * 16000)) / 16000
    return (np.sin(2 * np.pi * 220 * t) * level * 32767).astype("<i2").tobytes()


def feed(detector: TurnDetector, pcm: bytes) -> list[tuple[int, str]]:
    """Push ``pcm`` in 20 ms frames; (frame number, signal name) of each signal."""
    out = []
    for n, offset in enumerate(range(0, len(pcm), FRAME)):
        for signal in detector.push(pcm[offset : offset + FRAME], StreamPosition(1, n)):
            out.append((n, type(signal).__name__))
    return out


def detector(vad: VADStream) -> TurnDetector:
    return TurnDetector(vad, EndpointConfig(), StreamPosition(1, 0))


@pytest.mark.unit
def test_a_silent_caller_is_not_run_through_the_vad() -> None:
    vad = Counted(EnergyVAD().stream())
    signals = feed(detector(vad), silence(2.0))
    assert signals == []
    assert len(vad.judged) == QUIET_WINDOWS  # then the model stops listening
    assert vad.skipped == 2 * 16000 // 512 - QUIET_WINDOWS


@pytest.mark.unit
def test_speech_after_silence_is_heard_and_pauses_within_it_are_judged() -> None:
    vad = Counted(EnergyVAD().stream())
    d = detector(vad)
    feed(d, silence(1.0))
    before = len(vad.judged)
    # Speech, a 200 ms gap of digital silence inside it, speech, then silence.
    signals = feed(d, tone(0.5) + silence(0.2) + tone(0.5) + silence(1.0))
    assert [name for _, name in signals] == [
        "SpeechStarted",
        "Paused",
        "Resumed",
        "Paused",
        "TurnEnded",
    ]
    # Every window from the speech to the end of the turn was judged: the gap too.
    windows_to_end = int((0.5 + 0.2 + 0.5 + 0.384) * 16000 / 512)
    assert len(vad.judged) - before >= windows_to_end
    # A level between the quiet floor and speech is still heard.
    quiet_talker = Counted(EnergyVAD(threshold=0.001).stream())
    d = detector(quiet_talker)
    feed(d, silence(1.0))
    assert [name for _, name in feed(d, tone(0.5, level=0.004) + silence(1.0))][:1] == [
        "SpeechStarted"
    ]


def frames_of(signals: list[tuple[int, str]], name: str) -> list[int]:
    return [frame for frame, n in signals if n == name]


@pytest.mark.integration
@pytest.mark.parametrize("voice", [piper_speech, espeak_speech], ids=["piper", "espeak"])
def test_silero_hears_the_same_turns_with_and_without_the_gate(
    voice: Callable[[str], bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real questions between long silences, through Silero: the same turns,
    each starting and ending within a few frames of where a detector that runs
    the model on every window hears them, with far fewer windows run. (Not
    frame for frame: skipped silence leaves the model's recurrent state where
    it was; measured, starts come up to 2 frames sooner and an end 1 frame.)"""
    from voxfleet.providers.local.vad import SileroVAD

    model = SileroVAD()
    questions = [
        voice("What is the capital of France?"),
        voice("Tell me a joke about cats, please."),
        voice("Why is the sky blue, and why are sunsets red?"),
    ]
    call = silence(1.5) + silence(6.0).join(questions) + silence(2.0)

    gated = Counted(model.stream())
    heard_gated = feed(detector(gated), call)
    monkeypatch.setattr(turns, "QUIET_WINDOWS", 10**9)
    always = Counted(model.stream())
    heard_always = feed(detector(always), call)

    for name, slack in (("SpeechStarted", 3), ("TurnEnded", 2)):
        with_gate, without = frames_of(heard_gated, name), frames_of(heard_always, name)
        assert len(with_gate) == len(without) >= len(questions), (name, heard_gated)
        assert all(abs(a - b) <= slack for a, b in zip(with_gate, without, strict=True))
    assert gated.skipped > 0 and always.skipped == 0
    assert len(gated.judged) < 0.5 * len(always.judged)
