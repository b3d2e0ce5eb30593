"""The voice pipeline of one room, on the agent side.

Caller audio arrives from the bus (``room/{id}/up``), goes through VAD and the
endpointer; at a pause a reply is prepared speculatively, and released when the
caller's turn ends. Speech over a playing reply is a barge-in: the reply is
cancelled, ``interrupt`` is sent, and only what the caller heard goes into the
history. All conversation state lives in a RoomStateStore and is saved at every
change, so another agent process can pick the room up."""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from voxfleet.aio import TaskSet, cancel_and_wait
from voxfleet.audio import INPUT_RATE, pcm16_to_float
from voxfleet.bus.base import Subscription
from voxfleet.bus.messages import Audio, Numbered, decode
from voxfleet.dispatch.base import RoomStateStore
from voxfleet.domain.calls import EndReason, Speaker, Turn
from voxfleet.domain.conversation import ConversationState, HistoryItem
from voxfleet.domain.profiles import Profile
from voxfleet.errors import LeaseLost, MalformedMessage, ProviderError, RoomEnded
from voxfleet.observability.logging import get_logger
from voxfleet.observability.metrics import BARGE_INS, VOICE_TO_VOICE_SECONDS
from voxfleet.pipeline.audio import Recording, Windower
from voxfleet.pipeline.endpointing import EndpointConfig, Endpointer, TurnEvent
from voxfleet.pipeline.reply import Reply, chat_messages
from voxfleet.providers.base import Providers
from voxfleet.transport.stream import Inbox

log = get_logger(__name__)
PREROLL_MS = 320
CALLER_GONE_SECONDS = 30.0


class RoomLink(ABC):
    """How a session reaches its caller (through the bus and the media edge)."""

    @abstractmethod
    async def send_audio(self, pcm: bytes) -> None: ...

    @abstractmethod
    async def send(self, type_: str, **body: Any) -> None:
        """A client-visible message (state, transcript, interrupt, error)."""

    def resend(self, epoch: int, after: int) -> None:
        """The edge missed what was sent after message ``after`` of ``epoch``."""
        return None

    async def ask_replay(self, epoch: int, after: int) -> None:
        """Ask the edge for the caller's audio after frame ``after`` of ``epoch``."""
        return None


class TurnSink(ABC):
    """Where finished turns go to be stored (buffered; never blocks the call)."""

    @abstractmethod
    async def record(self, turn: Turn) -> None: ...


@dataclass(slots=True)
class _ActiveReply:
    reply: Reply
    task: asyncio.Task[None] | None = None
    seq: int = -1  # assigned when the reply is released


class RoomSession:
    def __init__(
        self,
        state: ConversationState,
        profile: Profile,
        providers: Providers,
        link: RoomLink,
        states: RoomStateStore,
        sink: TurnSink,
        endpointing: EndpointConfig | None = None,
        clock: Callable[[], float] = time.time,
        caller_gone_after: float = CALLER_GONE_SECONDS,
        listen_from_now: bool = False,
    ) -> None:
        self.state = state
        self.profile = profile
        self.providers = providers
        self.link = link
        self.states = states
        self.sink = sink
        self.clock = clock
        self._vad = providers.vad.stream()
        self._windower = Windower(self._vad.window)
        window_ms = self._vad.window / INPUT_RATE * 1000
        self._endpointer = Endpointer(endpointing or EndpointConfig(), window_ms)
        self._recording = Recording(int(PREROLL_MS / window_ms))
        self._tasks = TaskSet(f"room:{state.room_id}")
        self._candidate: tuple[Reply, asyncio.Task[None]] | None = None
        self._reply: _ActiveReply | None = None
        self._last_voice_at = 0.0
        self.hangup_reason: str | None = None
        # A state rebuilt without its audio position joins the caller's audio where
        # it is now, rather than replaying everything the edge still keeps.
        self._inbox = Inbox(state.audio_epoch, None if listen_from_now else state.audio_seq)
        self._caller_gone_after = caller_gone_after
        self._heard_edge_at = time.monotonic()
        self._recent_frames: deque[tuple[int, int]] = deque(maxlen=64)  # (seq, samples)
        self._stopped = asyncio.Event()
        self._handover_wanted = False
        self.frozen = asyncio.Event()  # set: idle and handing over; input is ignored
        self.paused = False  # the lease is unconfirmed: input is ignored until it is

    # -- lifecycle ----------------------------------------------------------

    async def run(self, up: Subscription) -> None:
        """Serve the room until the caller hangs up (or is gone), the call ends,
        ``up`` closes, or ``stop()``."""
        consume = self._tasks.spawn(self._serve(up), "serve")
        watch = self._tasks.spawn(self._watch_caller(), "watch-caller")
        stopped = self._tasks.spawn(self._stopped.wait(), "stopped")
        try:
            await asyncio.wait([consume, watch, stopped], return_when=asyncio.FIRST_COMPLETED)
            if consume.done() and not consume.cancelled() and consume.exception():
                raise consume.exception()  # type: ignore[misc]
        finally:
            await self._stop()

    def stop(self) -> None:
        """Leave the room now (the lease moved on): no hangup, nothing saved."""
        self._stopped.set()

    def end(self, reason: str) -> None:
        """The call is over (its edge ended it, or is gone): leave for good."""
        if self.hangup_reason is None:
            self.hangup_reason = reason
        self._stopped.set()

    async def _watch_caller(self) -> None:
        """A room whose edge went silent (not even its once-a-second tick) ends
        itself: the landing that held the caller is gone, or the call ended and
        its hangup was lost. A paused room is not counting: it hears nothing."""
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            if self.paused or self.frozen.is_set():
                self._heard_edge_at = now
            elif now - self._heard_edge_at > self._caller_gone_after:
                log.info("caller gone, room ends", room=self.state.room_id)
                self.hangup_reason = EndReason.CALLER_DISCONNECTED.value
                return

    def _lost_room(self, error: LeaseLost | RoomEnded) -> None:
        if isinstance(error, RoomEnded):
            log.info("call ended, leaving room", room=self.state.room_id)
            self.end("room_ended")
        else:
            log.info("lease lost, leaving room", room=self.state.room_id)
            self.stop()

    async def freeze_when_idle(self) -> None:
        """For a handover: wait for a turn boundary, then stop taking input. The
        edge keeps the caller's audio; the next agent replays it."""
        self._handover_wanted = True
        self._check_idle()
        await self.frozen.wait()

    def unfreeze(self) -> None:
        self._handover_wanted = False
        self.frozen.clear()

    def _check_idle(self) -> None:
        idle = self._reply is None and self._candidate is None and not self._recording.active
        if self._handover_wanted and idle and not self.frozen.is_set():
            self.frozen.set()

    async def save(self) -> None:
        await self.states.save(self.state)

    async def _serve(self, up: Subscription) -> None:
        try:
            if not self.state.greeted and self.profile.greeting:
                self.state.greeted = True
                await self.states.save(self.state)
                greeting = Reply(**self._reply_args(), fixed_text=self.profile.greeting)
                await self._start_reply(greeting, from_caller=False)
            elif self.state.pending_user_text:
                # Resumed mid-turn: answer what the caller already said.
                history = self._history()
                text = history.pop().text if history and history[-1].role == "user" else ""
                reply = Reply(**self._reply_args(), user_text=text, history=history)
                await self._start_reply(reply, from_caller=False)
            else:
                await self.link.send("state", state="listening")
                self._prefill()
            async for message in up:
                try:
                    decoded = decode(message)
                except MalformedMessage as e:
                    log.warning(
                        "malformed bus message dropped", room=self.state.room_id, error=str(e)
                    )
                    continue
                self._heard_edge_at = time.monotonic()
                if isinstance(decoded, Numbered):
                    if self.frozen.is_set() or self.paused:
                        continue  # not taken: asked for again once we listen
                    if not self._inbox.accept(decoded.epoch, decoded.seq):
                        await self._ask_replay()
                        continue
                    inner = decoded.message
                    if isinstance(inner, Audio):
                        await self._on_frame(inner.pcm, decoded.epoch, decoded.seq)
                    elif inner.type == "hangup":
                        self.hangup_reason = str(inner.body.get("reason", "caller_ended"))
                        break
                elif isinstance(decoded, Audio):
                    continue  # unnumbered audio is not the edge's
                elif decoded.type == "tick":
                    # The edge's last published frame: frames lost on the bus with
                    # no caller audio after them show up here.
                    epoch, seq = decoded.body.get("epoch"), decoded.body.get("seq")
                    if isinstance(epoch, int) and isinstance(seq, int):
                        self._inbox.tick(epoch, seq)
                        await self._ask_replay()
                elif decoded.type == "replay":
                    epoch, after = decoded.body.get("epoch"), decoded.body.get("after")
                    if isinstance(epoch, int) and isinstance(after, int):
                        self.link.resend(epoch, after)
        except (LeaseLost, RoomEnded) as e:
            self._lost_room(e)

    async def _stop(self) -> None:
        if self._candidate is not None:
            await cancel_and_wait(self._candidate[1])
            self._candidate = None
        if not self._stopped.is_set() or self.hangup_reason is not None:
            try:
                await self._interrupt_reply(notify=False)
            except (LeaseLost, RoomEnded):
                log.info("room lost, reply not recorded", room=self.state.room_id)
        await self._tasks.cancel_all()

    async def _on_frame(self, pcm: bytes, epoch: int, seq: int) -> None:
        """The next caller frame of the edge's numbered stream."""
        self._recent_frames.append((seq, len(pcm) // 2))
        await self._on_audio(pcm)
        if not self._recording.active:
            self.state.audio_epoch, self.state.audio_seq = epoch, seq
        self._check_idle()

    async def _ask_replay(self) -> None:
        """Ask the edge for every frame after the last one taken: once per gap,
        again after a second in case the request itself was lost."""
        if self.frozen.is_set() or self.paused:
            return
        after = self._inbox.replay_request()
        if after is not None:
            await self.link.ask_replay(self._inbox.epoch, after)

    def _seq_before_preroll(self) -> int:
        """The last frame before the utterance's pre-roll: what a resumed agent
        must replay after to hear the whole utterance."""
        needed = PREROLL_MS * INPUT_RATE // 1000
        for seq, samples in reversed(self._recent_frames):
            needed -= samples
            if needed <= 0:
                return seq - 1
        return self._recent_frames[0][0] - 1 if self._recent_frames else self.state.audio_seq

    # -- input ----------------------------------------------------------------

    async def _on_audio(self, pcm: bytes) -> None:
        for window in self._windower.push(pcm16_to_float(pcm)):
            probability = self._vad.probability(window)
            self._recording.push(window)
            event = self._endpointer.push(probability)
            if probability >= self._endpointer.config.silence_threshold:
                self._last_voice_at = self.clock()
            if event is not None:
                await self._on_turn_event(event)

    async def _on_turn_event(self, event: TurnEvent) -> None:
        if event is TurnEvent.SPEECH_START:
            self._recording.start()
            self.state.audio_seq = min(self.state.audio_seq, self._seq_before_preroll())
            if self._reply is not None:
                await self._interrupt_reply(notify=True)
        elif event is TurnEvent.PAUSE:
            reply = Reply(
                **self._reply_args(), audio=self._recording.audio(), history=self._history()
            )
            task = self._tasks.spawn(self._speculate(reply), "speculate")
            self._candidate = (reply, task)
        elif event is TurnEvent.RESUME:
            if self._candidate is not None:
                await cancel_and_wait(self._candidate[1])
                self._candidate = None
        elif event is TurnEvent.END:
            audio = self._recording.stop()
            if self._candidate is not None:
                reply, task = self._candidate
                self._candidate = None
                await self._start_reply(reply, running=task)
            else:
                reply = Reply(**self._reply_args(), audio=audio, history=self._history())
                await self._start_reply(reply)

    async def _speculate(self, reply: Reply) -> None:
        """Run a reply's production ahead of the end of the turn, and show the
        caller an interim caption of what was heard so far."""
        produce = asyncio.create_task(reply.produce(), name=f"room:{self.state.room_id}:produce")
        try:
            text = await asyncio.shield(reply.transcribed)
            if text and not reply.released:
                await self.link.send(
                    "transcript", role="user", text=text, final=False, seq=self.state.next_seq
                )
            await asyncio.shield(produce)
        except asyncio.CancelledError:
            await cancel_and_wait(produce)
            raise

    # -- replies ---------------------------------------------------------------

    def _reply_args(self) -> dict[str, Any]:
        return {
            "providers": self.providers,
            "profile": self.profile,
            "send_audio": self.link.send_audio,
            "clock": self.clock,
        }

    def _history(self) -> list[HistoryItem]:
        return self.state.recent(self.profile.generation.history_turns)

    async def _start_reply(
        self, reply: Reply, running: asyncio.Task[None] | None = None, from_caller: bool = True
    ) -> None:
        active = _ActiveReply(reply)

        async def first_audio() -> None:
            await self.link.send("state", state="speaking")

        async def chunk(text: str) -> None:
            await self.link.send("transcript", role="agent", text=text, final=False, seq=active.seq)

        reply.on_first_audio = first_audio
        reply.on_chunk = chunk
        producer = running or self._tasks.spawn(reply.produce(), "produce")
        self._reply = active
        active.task = self._tasks.spawn(self._run_reply(active, producer, from_caller), "reply")

    async def _run_reply(
        self, active: _ActiveReply, producer: asyncio.Task[None], from_caller: bool
    ) -> None:
        try:
            await self._produce_and_play(active, producer, from_caller)
        except (LeaseLost, RoomEnded) as e:
            await cancel_and_wait(producer)
            self._lost_room(e)

    async def _produce_and_play(
        self, active: _ActiveReply, producer: asyncio.Task[None], from_caller: bool
    ) -> None:
        reply = active.reply
        speech_end = self._last_voice_at
        try:
            await self.link.send("state", state="thinking")
            try:
                user_text = await asyncio.shield(reply.transcribed)
            except ProviderError as e:
                await self._provider_failed(e)
                await self._abandon(active, producer)
                return
            if from_caller:
                if not user_text:
                    # Noise, not words: nothing to answer.
                    await self._abandon(active, producer)
                    return
                await self._commit_user(user_text, speech_end)
            active.seq = self.state.take_seq()
            reply.release(speech_end if from_caller else None)
            try:
                await asyncio.gather(reply.play(), asyncio.shield(producer))
            except ProviderError as e:
                await self._provider_failed(e)
        except asyncio.CancelledError:
            await cancel_and_wait(producer)
            raise
        await self._finish_reply(active, interrupted=False)

    async def _abandon(self, active: _ActiveReply, producer: asyncio.Task[None]) -> None:
        await cancel_and_wait(producer)
        if self._reply is active:
            self._reply = None
        self._check_idle()
        await self.link.send("state", state="listening")

    async def _commit_user(self, text: str, speech_end: float) -> None:
        now = self.clock()
        seq = self.state.take_seq()
        self.state.add_user(text)
        self.state.pending_user_text = text
        await self.states.save(self.state)
        await self.link.send("transcript", role="user", text=text, final=True, seq=seq)
        await self.sink.record(
            Turn(self.state.room_id, seq, Speaker.USER, text, started_at=speech_end, ended_at=now)
        )

    async def _finish_reply(self, active: _ActiveReply, interrupted: bool) -> None:
        if self._reply is active:
            self._reply = None
        self._check_idle()
        reply, seq = active.reply, active.seq
        text = reply.heard_text() if interrupted else reply.full_text()
        self.state.add_agent(text)
        self.state.pending_user_text = None
        await self.states.save(self.state)
        await self.link.send(
            "transcript", role="agent", text=text, final=True, seq=seq, interrupted=interrupted
        )
        if not interrupted:
            await self.link.send("state", state="listening")
        self._prefill()
        now = self.clock()
        if reply.marks.first_audio_sent is not None and reply.marks.speech_end is not None:
            VOICE_TO_VOICE_SECONDS.observe(reply.marks.first_audio_sent - reply.marks.speech_end)
        if text or reply.started_at is not None:
            await self.sink.record(
                Turn(
                    self.state.room_id,
                    seq,
                    Speaker.AGENT,
                    text,
                    started_at=reply.started_at or now,
                    ended_at=now,
                    interrupted=interrupted,
                    marks=reply.marks,
                )
            )

    async def _interrupt_reply(self, notify: bool) -> None:
        active = self._reply
        if active is None:
            return
        self._reply = None
        await cancel_and_wait(active.task)
        if notify:
            BARGE_INS.inc()
            await self.link.send("interrupt")
            await self.link.send("state", state="listening")
        if active.seq >= 0:
            await self._finish_reply(active, interrupted=True)

    def _prefill(self) -> None:
        """Let the LLM evaluate the prompt so far while the caller talks."""
        messages = chat_messages(self.profile, self._history())
        self._tasks.spawn(self.providers.llm.prefill(messages), "prefill")

    async def _provider_failed(self, error: ProviderError) -> None:
        log.error("provider failed", room=self.state.room_id, code=error.code, error=error.message)
        await self.link.send("error", code=error.code, message="the agent could not answer that")
