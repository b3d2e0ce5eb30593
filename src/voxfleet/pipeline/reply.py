"""One agent reply: transcribe (if it starts from caller audio), generate, chunk,
synthesize and play. Production starts as soon as the reply exists (possibly
speculatively, at a pause in the caller's speech) in a task the reply owns;
playback waits for ``release()``, which the session calls once the caller's
turn is really over. Synthesis of chunk N+1 overlaps playback of chunk N.

The model may call the profile's tools (pipeline/tools.py) for a bounded
number of rounds. When a provider gives up mid-reply, the reply queues the
profile's apology at once (audio made at start-up, so it needs no provider)
while the chain falls back; when every provider failed, or the model said
nothing that can be spoken, it says the profile's "unavailable" phrase. Only
what was played counts as said: nothing else enters the history or the store."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

from voxfleet.aio import TaskSet, cancel_and_wait
from voxfleet.audio import Float32Array
from voxfleet.domain.calls import LatencyMarks
from voxfleet.domain.conversation import HistoryItem
from voxfleet.domain.profiles import Profile
from voxfleet.errors import ProviderError
from voxfleet.observability.metrics import APOLOGIES
from voxfleet.observability.spans import ReplyRecord
from voxfleet.pipeline.chunker import ClauseChunker, speakable
from voxfleet.pipeline.playout import Playout
from voxfleet.pipeline.tools import MAX_ROUNDS, Toolbox
from voxfleet.providers.base import LLM, Providers
from voxfleet.providers.chat import ChatMessage, GenerationParams, ToolCall
from voxfleet.providers.faults import ProviderFault
from voxfleet.providers.urgency import Level, Urgency, use

SendAudio = Callable[[bytes], Awaitable[None]]
OnChunk = Callable[[str], Awaitable[None]]
OnFirstAudio = Callable[[], Awaitable[None]]
_END = None
MAX_LINES = 64  # fixed lines (greetings) whose audio an agent keeps


def chat_messages(
    profile: Profile, history: Sequence[HistoryItem], user_text: str | None = None
) -> list[ChatMessage]:
    """The LLM prompt: the profile's system prompt, the history, the new turn."""
    messages = [ChatMessage("system", profile.system_prompt)]
    for item in history:
        messages.append(ChatMessage("user" if item.role == "user" else "assistant", item.text))
    if user_text is not None:
        messages.append(ChatMessage("user", user_text))
    return messages


class Prefill:
    """A room's prefill of the prompt so far (``LLM.prefill``): at most one
    waits for the models, and a reply that starts drops it, since the reply
    evaluates its prompt itself and the prefill would only do it again."""

    def __init__(self, llm: LLM, tasks: TaskSet) -> None:
        self._llm = llm
        self._tasks = tasks
        self._task: asyncio.Task[None] | None = None

    def start(self, messages: list[ChatMessage]) -> None:
        self.drop()
        self._task = self._tasks.spawn(self._llm.prefill(messages), "prefill")

    def drop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def release(self, messages: list[ChatMessage]) -> None:
        """The room is done here: what its prompt holds may go to another room."""
        self.drop()
        self._llm.release(messages)


class Reply:
    def __init__(
        self,
        providers: Providers,
        profile: Profile,
        send_audio: SendAudio,
        *,
        audio: Float32Array | None = None,
        user_text: str | None = None,
        fixed_text: str | None = None,
        history: Sequence[HistoryItem] = (),
        clock: Callable[[], float] = time.time,
        speculative: bool = False,
    ) -> None:
        """``speculative``: started while the caller may still be talking; its
        model work waits behind every room's critical work until ``decided()``."""
        self._providers = providers
        self._profile = profile
        self._audio = audio
        self._fixed_text = fixed_text
        self._history = list(history)
        self._clock = clock
        self.marks = LatencyMarks()
        self.urgency = Urgency(Level.TAIL if speculative else Level.CRITICAL)
        self.record = ReplyRecord(clock())  # its provider calls and faults, for its trace
        self._text = user_text or ""
        self._heard = asyncio.Event()  # set once the caller's words are known
        if audio is None:
            self._heard.set()
        self.failure: ProviderError | None = None
        self._released = asyncio.Event()
        self._chunks: asyncio.Queue[tuple[str, bytes] | None] = asyncio.Queue()
        self._send_audio = send_audio
        self._on_first_audio: OnFirstAudio | None = None
        self.playout = Playout(self._send_first_aware, providers.tts.sample_rate)
        self.started_at: float | None = None
        self.spoken_chunks: list[str] = []
        self._task: asyncio.Task[None] | None = None
        self.tools = Toolbox(profile)
        self._apologized = False
        self._queued_speech = False  # some chunk of this reply was synthesized

    def start(self, tasks: TaskSet) -> None:
        """Begin producing, in a task of ``tasks``."""
        self._task = tasks.spawn(self._produce(), "produce")

    def decided(self) -> None:
        """The caller's turn is over: this reply is the answer they wait for."""
        self.urgency.decided()

    async def cancel(self) -> None:
        await cancel_and_wait(self._task)

    async def transcript(self) -> str:
        """The caller's words this reply answers (empty: noise). Raises the
        provider's error if transcription failed."""
        await self._heard.wait()
        if self.failure is not None and not self._text:
            raise self.failure
        return self._text

    @property
    def released(self) -> bool:
        return self._released.is_set()

    def release(self, speech_end: float | None) -> None:
        self.marks.speech_end = speech_end
        self._released.set()

    @property
    def user_text(self) -> str:
        """The caller's words it answers, as far as known."""
        return self._text

    def heard_text(self) -> str:
        return self.playout.heard_text()

    def full_text(self) -> str:
        return " ".join(self.spoken_chunks)

    async def _send_first_aware(self, frame: bytes) -> None:
        if self.started_at is None:
            self.started_at = self._clock()
            self.marks.first_audio_sent = self.started_at
            await self._send_audio(frame)
            if self._on_first_audio is not None:
                await self._on_first_audio()
            return
        await self._send_audio(frame)

    # -- production -------------------------------------------------------

    async def _produce(self) -> None:
        """Transcribe, generate and synthesize into the chunk queue. A provider
        failure ends production early; it is kept in ``failure``."""
        use(self.urgency)  # the providers' model work runs at this reply's urgency
        try:
            if self._audio is not None:
                stt = self._providers.stt
                with self.record.timing("stt", stt.name, stt.model, self._clock):
                    self._text = await stt.transcribe(self._audio, self._fault)
                self.marks.stt_done = self._clock()
                self._heard.set()
            if self._fixed_text is not None:
                await self._synthesize(self._fixed_text, remember=True)
            elif self._text:
                await self._generate(self._text)
                if not self._queued_speech and not self.tools.end_requested:
                    raise ProviderError("the model's reply had nothing to speak")
        except ProviderError as e:
            self.failure = e
            self._say_canned(self._profile.unavailable)
        finally:
            self._heard.set()
            self._chunks.put_nowait(_END)

    def _fault(self, fault: ProviderFault) -> None:
        """A provider gave up on this reply: apologise now, once; the chain is
        already asking the next provider."""
        self.record.fault(fault, self._clock())
        if not fault.retrying and not self._apologized:
            self._apologized = True
            if self._say_canned(self._profile.apology):
                APOLOGIES.inc()

    def _say_canned(self, text: str) -> bool:
        pcm = self._providers.canned.get(text)
        if pcm is None:
            return False
        self._queued_speech = True
        self._chunks.put_nowait((text, pcm))
        return True

    async def _generate(self, user_text: str) -> None:
        gen = self._profile.generation
        messages = chat_messages(self._profile, self._history, user_text)
        params = GenerationParams(gen.temperature, gen.top_p, gen.max_tokens, gen.repeat_penalty)
        for round_ in range(MAX_ROUNDS + 1):
            offered = self.tools.specs if round_ < MAX_ROUNDS else []  # then it must answer
            chunker = ClauseChunker()
            text: list[str] = []
            calls: list[ToolCall] = []
            llm = self._providers.llm
            with self.record.timing("llm", llm.name, llm.model, self._clock):
                async for piece in llm.stream(messages, params, offered, self._fault):
                    if isinstance(piece, ToolCall):
                        calls.append(piece)
                        continue
                    if self.marks.llm_first_token is None and piece:
                        self.marks.llm_first_token = self._clock()
                    text.append(piece)
                    for chunk in chunker.push(piece):
                        await self._synthesize(chunk)
            for chunk in chunker.flush():
                await self._synthesize(chunk)
            if not calls or not offered:
                return
            messages.append(ChatMessage("assistant", "".join(text), tool_calls=tuple(calls)))
            for call in calls:
                messages.append(ChatMessage("tool", self.tools.run(call), tool_call_id=call.id))
            if self.tools.end_requested and "".join(text).strip():
                return  # it said goodbye with the call: nothing more to ask it

    async def _synthesize(self, text: str, remember: bool = False) -> None:
        """``remember``: a fixed line, said the same way on every call: its
        audio is made once per agent process and reused."""
        spoken = speakable(text)
        if not spoken:
            return
        rate = self._profile.speaking_rate
        lines = self._providers.lines
        pcm = lines.get((spoken, rate)) if remember else None
        if pcm is None:
            tts = self._providers.tts
            with self.record.timing("tts", tts.name, tts.model, self._clock):
                pcm = await tts.synthesize(spoken, rate, self._fault)
            if remember and len(lines) < MAX_LINES:
                lines[spoken, rate] = pcm
        if self.marks.tts_first_audio is None:
            self.marks.tts_first_audio = self._clock()
            self.urgency.first_audio_ready()
        self._queued_speech = True
        self._chunks.put_nowait((spoken, pcm))

    # -- playback ---------------------------------------------------------

    async def play(self, on_chunk: OnChunk, on_first_audio: OnFirstAudio) -> None:
        """Wait for release, then play chunks as they come; returns when the
        caller has heard the whole reply (or production stopped early: see
        ``failure``). ``on_chunk`` gets the text spoken so far at each chunk."""
        self._on_first_audio = on_first_audio
        await self._released.wait()
        while (item := await self._chunks.get()) is not _END:
            text, pcm = item
            self.spoken_chunks.append(text)
            await on_chunk(" ".join(self.spoken_chunks))
            await self.playout.play(pcm, text)
        await self.playout.drain()
