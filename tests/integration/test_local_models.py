"""The real local models behind the real WebSocket API: `voxfleet up` as a
subprocess, spoken questions from Piper and espeak-ng, checked by what comes
back and what is stored."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.audio import silence
from tests.support.calls import stored
from tests.support.server import up_process
from tests.support.speech import espeak_speech, piper_speech
from voxfleet.client import CallClient

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with up_process(tmp_path_factory.mktemp("up")) as base:
        yield base


def agent_final(seq: int) -> object:
    return lambda m: (
        m["type"] == "transcript" and m["role"] == "agent" and m["final"] and m["seq"] == seq
    )


async def test_spoken_question_is_heard_answered_and_stored(server: str) -> None:
    question = piper_speech("What is the capital of France?")
    call = CallClient(server)
    await call.start()
    assert call.ready is not None and call.ready["sample_rate"] == 22050
    greeting = await call.wait_for(agent_final(0), timeout=30)
    assert "voxfleet" in greeting["text"].lower()
    assert call.audio, "the greeting is heard as audio"
    greeting_frames = len(call.audio)
    await call.send_audio(question + silence(1.2))
    heard = await call.wait_for(
        lambda m: m["type"] == "transcript" and m["role"] == "user" and m["final"], timeout=30
    )
    assert "capital" in heard["text"].lower() and "france" in heard["text"].lower()
    reply = await call.wait_for(agent_final(2), timeout=60)
    assert reply["text"].strip() and len(call.audio) > greeting_frames
    await call.close()
    record = await stored(call, turns=3, ended=False)
    turns = record["turns"]
    assert [t["speaker"] for t in turns] == ["agent", "user", "agent"]
    assert turns[2]["text"] == reply["text"]
    marks = turns[2]["latency_ms"]
    assert set(marks) == {"stt_done", "llm_first_token", "tts_first_audio", "first_audio_sent"}
    assert marks["stt_done"] <= marks["llm_first_token"] <= marks["tts_first_audio"]
    assert marks["tts_first_audio"] <= marks["first_audio_sent"]


async def test_espeak_question_is_transcribed(server: str) -> None:
    call = CallClient(server)
    await call.start()
    await call.wait_for(agent_final(0), timeout=30)
    await call.send_audio(espeak_speech("What time do you open tomorrow?") + silence(1.2))
    heard = await call.wait_for(
        lambda m: m["type"] == "transcript" and m["role"] == "user" and m["final"], timeout=30
    )
    words = heard["text"].lower()
    assert "time" in words and "open" in words
    await call.wait_for(agent_final(2), timeout=60)
    await call.close()


async def test_caller_barges_in_on_the_greeting(server: str) -> None:
    # Made before the call: loading Piper here takes seconds on a slow machine,
    # and the greeting (~4 s) would be over before the caller spoke.
    speech = piper_speech("Sorry, can you hear me?") + silence(1.2)
    call = CallClient(server)
    await call.start()
    await call.wait_for(lambda m: m["type"] == "state" and m["state"] == "speaking", timeout=30)
    await call.send_audio(speech)
    await call.wait_for(lambda m: m["type"] == "interrupt", timeout=30)
    cut = await call.wait_for(agent_final(0), timeout=30)
    assert cut.get("interrupted") is True
    heard = await call.wait_for(
        lambda m: m["type"] == "transcript" and m["role"] == "user" and m["final"], timeout=30
    )
    assert "hear" in heard["text"].lower()
    await call.wait_for(agent_final(2), timeout=60)
    await call.close()
    record = await stored(call, turns=3, ended=False)
    greeting = record["turns"][0]
    assert greeting["interrupted"] is True
    full = "Hi, I'm Vox, the voxfleet assistant. How can I help you today?"
    assert len(greeting["text"]) < len(full)


def test_server_log_has_a_line_per_model(
    server: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    logs = list(Path(tmp_path_factory.getbasetemp()).glob("up*/voxfleet-up.log"))
    text = logs[0].read_text()
    for kind, model in (
        ("vad", "silero-v6"),
        ("stt", "whisper-tiny.en"),
        ("llm", "smollm2-135m"),
        ("tts", "piper-joe-medium"),
    ):
        assert f"kind={kind} provider=local model={model}" in text
    assert "voxfleet is ready: open http://127.0.0.1:" in text


async def test_a_scripted_llm_behind_local_speech(tmp_path: Path) -> None:
    """One capability switched alone: local VAD, Whisper and Piper, scripted replies."""
    with up_process(tmp_path, VOXFLEET_LLM="scripted") as base:
        call = CallClient(base)
        await call.start()
        await call.wait_for(agent_final(0), timeout=30)
        await call.send_audio(piper_speech("What is the capital of France?") + silence(1.2))
        heard = await call.wait_for(
            lambda m: m["type"] == "transcript" and m["role"] == "user" and m["final"], timeout=30
        )
        assert "france" in heard["text"].lower()
        reply = await call.wait_for(agent_final(2), timeout=30)
        assert reply["text"].startswith("You said")  # the scripted LLM's words, spoken by Piper
        assert call.ready is not None and call.ready["sample_rate"] == 22050
        await call.close()
