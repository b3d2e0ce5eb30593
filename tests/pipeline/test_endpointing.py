"""Endpointer: probabilities in, turn events out."""

from __future__ import annotations

import pytest

from voxfleet.pipeline.endpointing import EndpointConfig, Endpointer, TurnEvent

pytestmark = pytest.mark.unit
W = 32.0  # window ms


def run(probs: list[float], config: EndpointConfig | None = None) -> list[tuple[int, TurnEvent]]:
    ep = Endpointer(config or EndpointConfig(), W)
    return [(i, e) for i, p in enumerate(probs) if (e := ep.push(p)) is not None]


def test_speech_then_silence_gives_start_pause_end() -> None:
    cfg = EndpointConfig(min_speech_ms=96, speculate_ms=128, end_ms=384)
    events = run([0.9] * 10 + [0.0] * 15, cfg)
    assert [e for _, e in events] == [TurnEvent.SPEECH_START, TurnEvent.PAUSE, TurnEvent.END]
    start, pause, end = (i for i, _ in events)
    assert start == 2  # third window reaches 96 ms
    assert pause == 10 + 3  # fourth silent window reaches 128 ms
    assert end == 10 + 11  # twelfth silent window reaches 384 ms


def test_short_blip_is_not_speech() -> None:
    assert run([0.9, 0.9, 0.0, 0.9, 0.0] * 4) == []


def test_speech_after_pause_resumes_and_delays_end() -> None:
    events = run([0.9] * 5 + [0.0] * 5 + [0.9] * 5 + [0.0] * 13)
    kinds = [e for _, e in events]
    assert kinds == [
        TurnEvent.SPEECH_START,
        TurnEvent.PAUSE,
        TurnEvent.RESUME,
        TurnEvent.PAUSE,
        TurnEvent.END,
    ]


def test_between_thresholds_before_pause_counts_as_speech() -> None:
    # 0.4 sits between the thresholds: it must not start a pause by itself.
    events = run([0.9] * 5 + [0.4] * 20)
    assert [e for _, e in events] == [TurnEvent.SPEECH_START]


def test_max_utterance_forces_end() -> None:
    cfg = EndpointConfig(max_utterance_ms=640)
    events = run([0.9] * 30, cfg)
    # Cut at 640 ms; the speech that goes on is a new utterance.
    assert events == [
        (2, TurnEvent.SPEECH_START),
        (19, TurnEvent.END),
        (22, TurnEvent.SPEECH_START),
    ]
