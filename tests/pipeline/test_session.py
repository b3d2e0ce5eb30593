"""RoomSession with scripted providers: caller audio in, agent messages out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from tests.audio import frames, silence, tone
from voxfleet.dispatch.base import RoomStateStore
from voxfleet.domain.calls import Speaker, Turn
from voxfleet.domain.conversation import ConversationState
from voxfleet.domain.events import CallEvent, EventKind
from voxfleet.domain.profiles import GenerationSettings, Profile
from voxfleet.messages.client import AgentMessage
from voxfleet.pipeline.ports import (
    AudioIn,
    CallerEvent,
    CallerHungUp,
    InboundLink,
    OutboundLink,
    StreamPosition,
    TurnSink,
)
from voxfleet.pipeline.session import RoomSession
from voxfleet.providers.base import Providers
from voxfleet.providers.chat import ChatMessage
from voxfleet.providers.scripted import EnergyVAD, ScriptedLLM, ScriptedSTT, ScriptedTTS

pytestmark = pytest.mark.unit
EPOCH = 1_000


class RecordingLink(InboundLink, OutboundLink):
    """Both ends of a session's link in memory: events pushed in, what the
    session says recorded (as the dicts a client would get)."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.audio_bytes = 0
        self.changed = asyncio.Event()
        self.held = False
        self._events: asyncio.Queue[CallerEvent] = asyncio.Queue()
        self._seq = 0

    # -- out
    async def audio(self, pcm: bytes) -> None:
        self.audio_bytes += len(pcm)

    async def send(self, message: AgentMessage) -> None:
        self.messages.append(message.model_dump(exclude_none=True))
        self.changed.set()

    # -- in
    def push_audio(self, pcm: bytes) -> None:
        self._seq += 1
        self._events.put_nowait(AudioIn(pcm, StreamPosition(EPOCH, self._seq)))

    def push(self, event: CallerEvent) -> None:
        self._events.put_nowait(event)

    def hold(self) -> None:
        self.held = True

    def release(self) -> None:
        self.held = False

    async def events(self) -> AsyncIterator[CallerEvent]:
        while True:
            event = await self._events.get()
            if isinstance(event, AudioIn) and self.held:
                continue
            yield event
            if not isinstance(event, AudioIn):
                return

    def of_type(self, type_: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == type_]

    async def wait_for(
        self, predicate: Any, timeout: float = 10.0, start: int = 0
    ) -> dict[str, Any]:
        """The first message from index ``start`` on that matches."""
        async with asyncio.timeout(timeout):
            while True:
                for m in self.messages[start:]:
                    if predicate(m):
                        return m
                self.changed.clear()
                await self.changed.wait()


class DictStates(RoomStateStore):
    """Unfenced state for one session, kept as JSON like the real stores."""

    def __init__(self) -> None:
        self.saved: dict[str, str] = {}

    async def save(self, state: ConversationState) -> None:
        self.saved[state.room_id] = state.model_dump_json()

    async def load(self, room_id: str) -> ConversationState | None:
        raw = self.saved.get(room_id)
        return None if raw is None else ConversationState.model_validate_json(raw)


class ListSink(TurnSink):
    def __init__(self) -> None:
        self.turns: list[Turn] = []
        self.events: list[CallEvent] = []

    async def record(self, turn: Turn) -> None:
        self.turns.append(turn)

    async def event(self, event: CallEvent) -> None:
        self.events.append(event)


def profile(greeting: str = "Hi.") -> Profile:
    return Profile(
        name="test",
        system_prompt="Be brief.",
        greeting=greeting,
        generation=GenerationSettings(max_tokens=6),
    )


def providers(stt: ScriptedSTT | None = None) -> Providers:
    return Providers(
        EnergyVAD(), stt or ScriptedSTT(0.02), ScriptedLLM(0.02, 0.005), ScriptedTTS(0.01)
    )


class Harness:
    def __init__(
        self,
        greeting: str = "Hi.",
        state: ConversationState | None = None,
        stt: ScriptedSTT | None = None,
        using: Providers | None = None,
        agent: Profile | None = None,
    ) -> None:
        self.link = RecordingLink()
        self.sink = ListSink()
        self.states = DictStates()
        self.state = state or ConversationState(room_id="r1", profile="test")
        self.profile = agent or profile(greeting)
        self.providers = using or providers(stt)
        self.session = RoomSession(
            self.state,
            self.profile,
            self.providers,
            self.link,
            self.link,
            self.states,
            self.sink,
        )
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Harness:
        await self.providers.prepare_phrases([self.profile.apology, self.profile.unavailable])
        self.task = asyncio.create_task(self.session.run(), name="session")
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.link.push(CallerHungUp("caller_ended"))
        assert self.task is not None
        await asyncio.wait_for(self.task, 10)

    async def say(self, pcm: bytes, realtime: bool = True) -> None:
        for frame in frames(pcm):
            self.link.push_audio(frame)
            await asyncio.sleep(0.02 if realtime else 0)


def finals(link: RecordingLink, role: str) -> list[dict[str, Any]]:
    return [m for m in link.of_type("transcript") if m["role"] == role and m["final"]]


async def test_greets_then_answers_a_question() -> None:
    async with Harness() as h:
        await h.link.wait_for(lambda m: m["type"] == "transcript" and m["final"])
        await h.say(tone(0.6) + silence(0.6))
        await h.link.wait_for(
            lambda m: (
                m["type"] == "transcript" and m["role"] == "agent" and m["final"] and m["seq"] == 2
            )
        )
    user = finals(h.link, "user")
    agent = finals(h.link, "agent")
    assert [m["text"] for m in user] == ["utterance 0.6 seconds"]
    assert agent[0]["text"] == "Hi." and agent[0]["seq"] == 0
    assert agent[1]["text"].startswith("You said utterance 0.6 seconds")
    assert [t.speaker for t in h.sink.turns] == [Speaker.AGENT, Speaker.USER, Speaker.AGENT]
    reply = h.sink.turns[2]
    marks = reply.marks
    assert marks.speech_end is not None and marks.first_audio_sent is not None
    assert marks.speech_end <= marks.stt_done <= marks.llm_first_token  # type: ignore[operator]
    assert marks.llm_first_token <= marks.tts_first_audio <= marks.first_audio_sent  # type: ignore[operator]
    saved = await h.states.load("r1")
    assert saved is not None and saved.greeted and saved.pending_user_text is None
    assert [i.role for i in saved.history] == ["agent", "user", "agent"]


async def test_barge_in_cuts_the_reply_and_keeps_only_what_was_heard() -> None:
    async with Harness(greeting="Hello and welcome to the scripted test line, friend.") as h:
        await h.link.wait_for(lambda m: m["type"] == "state" and m["state"] == "speaking")
        await asyncio.sleep(0.5)  # about a sixth of the 3 s greeting plays
        await h.say(tone(0.5) + silence(0.6))
        await h.link.wait_for(lambda m: m["type"] == "interrupt")
        await h.link.wait_for(
            lambda m: m["type"] == "transcript" and m["role"] == "user" and m["final"]
        )
    greeting = finals(h.link, "agent")[0]
    assert greeting["interrupted"] is True
    full = "Hello and welcome to the scripted test line, friend."
    assert 0 < len(greeting["text"]) < len(full)
    assert full.startswith(greeting["text"])
    first = h.sink.turns[0]
    assert first.interrupted and first.text == greeting["text"]
    assert h.state.history[0].text == greeting["text"]
    assert [(e.kind, e.detail["seq"]) for e in h.sink.events] == [(EventKind.INTERRUPTION, 0)]


async def test_noise_without_words_gets_no_answer() -> None:
    # A blip long enough for the VAD but the STT hears nothing in it.
    async with Harness(greeting="", stt=_SilentSTT()) as h:
        await h.link.wait_for(lambda m: m["type"] == "state")
        await h.say(tone(0.3) + silence(0.6))
        thinking = await h.link.wait_for(lambda m: m.get("state") == "thinking")
        after = next(i for i, m in enumerate(h.link.messages) if m is thinking)
        await h.link.wait_for(lambda m: m.get("state") == "listening", start=after)
    assert finals(h.link, "user") == [] and h.sink.turns == []


class _SilentSTT(ScriptedSTT):
    async def _transcribe(self, audio: Any) -> str:
        return ""


async def test_resumed_room_answers_pending_turn_without_greeting() -> None:
    state = ConversationState(room_id="r1", profile="test", greeted=True, next_seq=2)
    state.add_agent("Hi.")
    state.add_user("utterance 1.0 seconds")
    state.pending_user_text = "utterance 1.0 seconds"
    async with Harness(state=state) as h:
        reply = await h.link.wait_for(
            lambda m: m["type"] == "transcript" and m["role"] == "agent" and m["final"]
        )
    assert reply["seq"] == 2
    assert reply["text"].startswith("You said utterance 1.0 seconds")
    assert all(m.get("text") != "Hi." for m in h.link.of_type("transcript"))


class CountingTTS(ScriptedTTS):
    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    async def _synthesize(self, text: str, rate: float) -> bytes:
        self.texts.append(text)
        return await super()._synthesize(text, rate)


async def test_a_greeting_is_synthesized_once_per_agent_and_heard_whole_on_every_call() -> None:
    tts = CountingTTS()
    shared = Providers(vad=EnergyVAD(), stt=ScriptedSTT(), llm=ScriptedLLM(), tts=tts)
    heard = []
    for room in ("r1", "r2", "r3"):
        state = ConversationState(room_id=room, profile="test")
        async with Harness(greeting="Welcome to the line.", state=state, using=shared) as h:
            await h.link.wait_for(lambda m: m["type"] == "transcript" and m["final"])
        heard.append(h.link.audio_bytes)
        assert finals(h.link, "agent")[0]["text"] == "Welcome to the line."
    assert tts.texts.count("Welcome to the line.") == 1
    assert heard[0] > 0 and heard == [heard[0]] * 3


class ReleasingLLM(ScriptedLLM):
    def __init__(self) -> None:
        super().__init__(0.02, 0.005)
        self.released: list[list[tuple[str, str]]] = []

    def release(self, messages: Sequence[ChatMessage]) -> None:
        self.released.append([(m.role, m.content) for m in messages])


async def test_a_room_that_ends_releases_its_conversation_to_the_llm() -> None:
    llm = ReleasingLLM()
    using = Providers(vad=EnergyVAD(), stt=ScriptedSTT(0.02), llm=llm, tts=ScriptedTTS(0.01))
    async with Harness(using=using) as h:
        await h.link.wait_for(lambda m: m["type"] == "transcript" and m["final"])
        await h.say(tone(0.6) + silence(0.6))
        await h.link.wait_for(lambda m: m["type"] == "transcript" and m["final"] and m["seq"] == 2)
        assert llm.released == []  # not while the call goes on
    (conversation,) = llm.released
    assert [role for role, _ in conversation] == ["system", "assistant", "user", "assistant"]
    assert conversation[2] == ("user", "utterance 0.6 seconds")
