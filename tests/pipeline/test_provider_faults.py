"""Faults do not end calls: a room session whose hosted providers (the openai
SDK against the local stand-in, tests/support/openai_standin.py) hang, answer
429 or 5xx, break their stream or send silence, at each stage. The caller
hears the profile's apology (made at start-up), the chain falls back, the turn
is answered, and only what was said is recorded."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.audio import silence, tone
from tests.pipeline.test_session import Harness, finals, profile
from tests.support.openai_standin import StandIn, standin
from voxfleet.domain.events import EventKind
from voxfleet.domain.profiles import Profile, Snippet
from voxfleet.providers.base import LLM, STT, TTS, Providers
from voxfleet.providers.chain import CONTINUE, FallbackLLM, FallbackSTT, FallbackTTS
from voxfleet.providers.endpoints import Endpoint
from voxfleet.providers.hosted.client import make_client
from voxfleet.providers.hosted.llm import HostedLLM
from voxfleet.providers.hosted.stt import HostedSTT
from voxfleet.providers.hosted.tts import HostedTTS
from voxfleet.providers.scripted import EnergyVAD, ScriptedLLM, ScriptedSTT, ScriptedTTS

pytestmark = pytest.mark.unit

APOLOGY = "Sorry, one moment."
UNAVAILABLE = "Sorry, I can't answer that right now. Please say it again in a moment."


def endpoint(stand: StandIn, name: str) -> Endpoint:
    return Endpoint(
        name=name,
        url=stand.url,
        auth="none",
        llm="m",
        stt="w",
        tts="t",
        first_token_seconds=0.5,
        stall_seconds=0.5,
        transcription_seconds=0.5,
        first_audio_seconds=0.5,
    )


@contextlib.asynccontextmanager
async def chains(
    llm: list[str], stt: list[str] | None = None, tts: list[str] | None = None
) -> AsyncIterator[tuple[Providers, dict[str, StandIn]]]:
    """Providers whose chains are made of stand-in endpoints (named "a", "b")
    and the scripted providers ("scripted"), in the given order."""
    async with standin() as a, standin() as b:
        stands = {"a": a, "b": b}
        clients = {n: make_client(endpoint(s, n)) for n, s in stands.items()}

        def members(kind: str, names: list[str]) -> list[Any]:
            hosted = {"llm": HostedLLM, "stt": HostedSTT, "tts": HostedTTS}[kind]
            scripted = {
                "llm": lambda: ScriptedLLM(0.02, 0.005),
                "stt": lambda: ScriptedSTT(0.02),
                "tts": lambda: ScriptedTTS(0.01),
            }[kind]
            return [
                scripted() if n == "scripted" else hosted(endpoint(stands[n], n), clients[n])
                for n in names
            ]

        llms: list[LLM] = members("llm", llm)
        stts: list[STT] = members("stt", stt or ["scripted"])
        ttss: list[TTS] = members("tts", tts or ["scripted"])
        providers = Providers(
            EnergyVAD(),
            FallbackSTT(stts, failures=2, cooldown=30),
            FallbackLLM(llms, failures=2, cooldown=30),
            FallbackTTS(ttss, failures=2, cooldown=30),
        )
        try:
            yield providers, stands
        finally:
            for client in clients.values():
                await client.close()


def no_greeting() -> Profile:
    return profile(greeting="")


async def ask(h: Harness, seconds: float = 1.0) -> dict[str, Any]:
    """Say something; the agent's final reply to it."""
    start = len(h.link.messages)
    await h.say(tone(seconds) + silence(0.6))
    return await h.link.wait_for(
        lambda m: m["type"] == "transcript" and m["role"] == "agent" and m["final"],
        start=start,
    )


async def test_a_hanging_llm_is_apologised_for_and_the_next_one_answers() -> None:
    async with chains(["a", "scripted"]) as (providers, stands):
        stands["a"].fail("chat", "hang")  # it sends keep-alive bytes, never a token
        async with Harness(using=providers, agent=no_greeting()) as h:
            await h.link.wait_for(lambda m: m.get("state") == "listening")
            reply = await ask(h)
            again = await ask(h, 0.6)  # the next turn: the endpoint answers again
    assert reply["text"].startswith(f"{APOLOGY} You said utterance 1.0 seconds")
    assert again["text"] == "You said utterance 0.6 seconds. Thanks, I got it."
    assert finals(h.link, "user")[0]["text"] == "utterance 1.0 seconds"
    assert h.link.of_type("error") == []
    agent_turns = [t.text for t in h.sink.turns if t.speaker == "agent"]
    assert agent_turns == [reply["text"], again["text"]]
    fault, fallback = h.sink.events
    assert (fault.kind, fault.detail["stage"], fault.detail["provider"]) == (
        EventKind.PROVIDER_FAULT,
        "llm",
        "a",
    )
    assert fault.detail["seq"] == fallback.detail["seq"] == 1
    assert (fallback.kind, fallback.detail["from"], fallback.detail["to"]) == (
        EventKind.FALLBACK,
        "a",
        "scripted-llm",
    )
    assert fault.at <= fallback.at


async def test_a_stream_broken_mid_reply_is_continued_not_repeated() -> None:
    async with chains(["a", "b"]) as (providers, stands):
        stands["a"].fail("chat", "break")  # three words, then the connection is cut
        stands["b"].reply("1.0 seconds. Thanks, I got it.")
        async with Harness(using=providers, agent=no_greeting()) as h:
            await h.link.wait_for(lambda m: m.get("state") == "listening")
            reply = await ask(h)
    assert reply["text"] == f"{APOLOGY} You said utterance 1.0 seconds. Thanks, I got it."
    (continued,) = stands["b"].requests("chat")
    said, asked = continued.body["messages"][-2:]
    assert said == {"role": "assistant", "content": "You said utterance"}
    assert asked == {"role": "user", "content": CONTINUE}


async def test_when_every_llm_fails_the_caller_hears_so_and_the_call_goes_on() -> None:
    async with chains(["a"]) as (providers, stands):
        stands["a"].fail("chat", "500", times=2)  # both attempts
        async with Harness(using=providers, agent=no_greeting()) as h:
            await h.link.wait_for(lambda m: m.get("state") == "listening")
            failed = await ask(h)
            answered = await ask(h, 0.6)
    assert failed["text"] == f"{APOLOGY} {UNAVAILABLE}"
    assert [e["code"] for e in h.link.of_type("error")] == ["provider_unavailable"]
    assert answered["text"] == "You said utterance 0.6 seconds. Thanks, I got it."


async def test_a_transcription_that_hangs_falls_back() -> None:
    async with chains(["scripted"], stt=["a", "scripted"]) as (providers, stands):
        stands["a"].fail("transcription", "hang")
        async with Harness(using=providers, agent=no_greeting()) as h:
            await h.link.wait_for(lambda m: m.get("state") == "listening")
            reply = await ask(h)
    assert finals(h.link, "user")[0]["text"] == "utterance 1.0 seconds"
    assert reply["text"].startswith(f"{APOLOGY} You said utterance 1.0 seconds")


async def test_when_no_transcription_works_the_caller_is_asked_again() -> None:
    async with chains(["scripted"], stt=["a"]) as (providers, stands):
        stands["a"].fail("transcription", "429", times=2)
        async with Harness(using=providers, agent=no_greeting()) as h:
            await h.link.wait_for(lambda m: m.get("state") == "listening")
            reply = await ask(h)
            answered = await ask(h, 0.6)
    assert reply["text"] == f"{APOLOGY} {UNAVAILABLE}"
    assert answered["text"].startswith("You said utterance 0.6 seconds")


@pytest.mark.parametrize("fault", ["silent", "empty", "hang", "break"])
async def test_speech_that_does_not_come_is_made_by_the_next_voice(fault: str) -> None:
    async with (
        chains(["scripted"], tts=["a", "scripted"]) as (providers, stands),
        Harness(using=providers, agent=no_greeting()) as h,
    ):
        await h.link.wait_for(lambda m: m.get("state") == "listening")
        stands["a"].fail("speech", fault)
        before = h.link.audio_bytes
        reply = await ask(h)
    assert reply["text"].startswith(APOLOGY)
    # 24 kHz audio: every letter of the reply was heard (60 ms a letter), apology included.
    letters = len(reply["text"].replace(" ", ""))
    assert h.link.audio_bytes - before == pytest.approx(letters * 0.06 * 24000 * 2, rel=0.02)


async def test_a_breaker_skips_a_failing_endpoint_then_probes_it() -> None:
    async with chains(["a", "scripted"]) as (providers, stands):
        llm = providers.llm
        assert isinstance(llm, FallbackLLM)
        stands["a"].fail("chat", "hang", times=2)
        async with Harness(using=providers, agent=no_greeting()) as h:
            await h.link.wait_for(lambda m: m.get("state") == "listening")
            await ask(h)
            await ask(h, 0.6)  # two failures in a row: the breaker opens
            asked = len(stands["a"].requests("chat"))
            skipped = await ask(h, 0.8)
            assert len(stands["a"].requests("chat")) == asked  # not even tried
            llm._chain.members[0][1]._cooldown = 0.0  # the cooldown is over
            probed = await ask(h, 1.2)
    assert asked == 2
    assert skipped["text"].startswith("You said utterance 0.8 seconds, that")  # scripted
    assert probed["text"] == "You said utterance 1.2 seconds. Thanks, I got it."  # a's answer
    assert llm._chain.members[0][1].state == "closed"


async def test_tools_look_up_knowledge_and_are_recorded_on_the_turn() -> None:
    agent = no_greeting().model_copy(
        update={
            "tools": ["lookup", "end_call"],
            "knowledge": [
                Snippet(title="Opening hours", text="We are open 7 am to 6 pm every day."),
                Snippet(title="Parking", text="Parking is free behind the building."),
            ],
        }
    )
    async with chains(["a"]) as (providers, stands):
        stands["a"].reply("", [{"name": "lookup", "arguments": {"query": "opening hours"}}])
        stands["a"].reply("We are open 7 am to 6 pm.")
        stands["a"].reply("Goodbye!", [{"name": "end_call", "arguments": {"reason": "done"}}])
        async with Harness(using=providers, agent=agent) as h:
            await h.link.wait_for(lambda m: m.get("state") == "listening")
            answer = await ask(h)
            goodbye = await ask(h, 0.6)
            await h.link.wait_for(lambda m: m["type"] == "hang_up")
            assert h.task is not None
            await h.task  # the session ends by itself
    assert answer["text"] == "We are open 7 am to 6 pm."
    assert goodbye["text"] == "Goodbye!"
    assert h.session.hangup_reason == "agent_ended"
    first, second, _goodbye = stands["a"].requests("chat")
    assert [t["function"]["name"] for t in first.body["tools"]] == ["lookup", "end_call"]
    tool_message = second.body["messages"][-1]
    assert tool_message["role"] == "tool"
    assert tool_message["content"].startswith("Opening hours: We are open 7 am to 6 pm")
    turns = [t for t in h.sink.turns if t.speaker == "agent"]
    assert [u.name for u in turns[0].tools] == ["lookup"]
    assert turns[0].tools[0].arguments == {"query": "opening hours"}
    assert [(u.name, u.arguments) for u in turns[1].tools] == [("end_call", {"reason": "done"})]


async def test_a_model_that_keeps_calling_tools_must_answer_after_three_rounds() -> None:
    agent = no_greeting().model_copy(
        update={"tools": ["lookup"], "knowledge": [Snippet(title="Hours", text="7 to 6.")]}
    )
    async with chains(["a"]) as (providers, stands):
        for _ in range(4):  # the fourth is not offered tools: its call is dropped
            stands["a"].reply("", [{"name": "lookup", "arguments": {"query": "hours"}}])
        async with Harness(using=providers, agent=agent) as h:
            await h.link.wait_for(lambda m: m.get("state") == "listening")
            reply = await ask(h)
    requests = stands["a"].requests("chat")[-4:]
    assert [bool(r.body.get("tools")) for r in requests] == [True, True, True, False]
    assert reply["text"] == UNAVAILABLE  # it never said anything speakable
    (turn,) = [t for t in h.sink.turns if t.speaker == "agent"]
    assert [u.name for u in turn.tools] == ["lookup", "lookup", "lookup"]
