"""The metrics worth alerting on, read from a real app's /metrics after a
scripted call: each of the caller's turns is counted once in every stage
histogram and in voice-to-voice, and the agent shows its rooms and capacity."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.metrics import metrics_around_a_call, samples, value
from voxfleet.domain.calls import LatencyMarks
from voxfleet.observability.metrics import TURN_STAGE_SECONDS, observe_turn

pytestmark = pytest.mark.integration

STAGES = ("end_of_turn", "stt", "llm_first_token", "tts_first_audio")


def counted(text: str, name: str, **labels: str) -> float:
    return value(text, f"{name}_count", **labels)


async def test_a_call_is_counted_once_per_turn_in_every_stage(tmp_path: Path) -> None:
    before, after = await metrics_around_a_call(tmp_path, turns=2)
    for stage in STAGES:
        turns = counted(after, "voxfleet_turn_stage_seconds", stage=stage)
        assert turns - counted(before, "voxfleet_turn_stage_seconds", stage=stage) == 2, stage
    v2v = "voxfleet_voice_to_voice_seconds"
    assert counted(after, v2v) - counted(before, v2v) == 2  # the greeting answers no speech
    assert value(after, "voxfleet_agent_capacity") == 3
    assert value(after, "voxfleet_agent_active_rooms") == 0  # the call is over
    # Voice-to-voice takes at least the wait for the transcript.
    total = value(after, f"{v2v}_sum") - value(before, f"{v2v}_sum")
    stt = value(after, "voxfleet_turn_stage_seconds_sum", stage="stt") - value(
        before, "voxfleet_turn_stage_seconds_sum", stage="stt"
    )
    assert 0 < stt <= total < 10
    for _name, labels in samples(after):  # bounded labels: never a call id
        assert not any(v.startswith("c_") for _k, v in labels), labels


def test_a_reply_without_speech_is_not_counted() -> None:
    def count() -> float:
        return sum(
            s.value
            for m in TURN_STAGE_SECONDS.collect()
            for s in m.samples
            if s.name.endswith("_count")
        )

    before = count()
    observe_turn(LatencyMarks(stt_done=1.0, llm_first_token=2.0, first_audio_sent=3.0))
    assert count() == before
    observe_turn(LatencyMarks(speech_end=1.0, turn_decided=1.2, stt_done=1.1))
    assert count() == before + 2  # end_of_turn and stt: the later marks never came
