"""Turn-taking: who speaks when, and what goes into the record.

At a pause in the caller's speech a reply is produced speculatively (held,
not heard); if the caller goes on it is dropped, if the turn ends it is
released. Speech over a playing reply is a barge-in: the reply is cancelled,
the caller is told to drop the agent's queued audio, and only what the caller
heard goes into the history and the store. Every change of the conversation is
saved before it is announced, so another agent can carry the room on."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from voxfleet.aio import TaskSet, cancel_and_wait
from voxfleet.audio import Float32Array
from voxfleet.dispatch.base import RoomStateStore
from voxfleet.domain.calls import Speaker, Turn
from voxfleet.domain.conversation import ConversationState, HistoryItem
from voxfleet.domain.profiles import Profile
from voxfleet.errors import LeaseLost, ProviderError, RoomEnded
from voxfleet.messages.client import AgentState, Error, HangUp, Interrupt, State, Transcript
from voxfleet.observability.logging import get_logger
from voxfleet.observability.metrics import BARGE_INS, observe_turn
from voxfleet.observability.tracing import FinishedTurn, record_turn
from voxfleet.pipeline.incidents import barge_in, reply_events
from voxfleet.pipeline.ports import OutboundLink, TurnSink
from voxfleet.pipeline.reply import Prefill, Reply, chat_messages
from voxfleet.providers.base import Providers

log = get_logger(__name__)


@dataclass(slots=True)
class _Active:
    reply: Reply
    task: asyncio.Task[None] | None = None  # answering or playing it
    seq: int = -1  # the turn number, taken when the reply is released


class TurnTaker:
    def __init__(
        self,
        state: ConversationState,
        profile: Profile,
        providers: Providers,
        link: OutboundLink,
        states: RoomStateStore,
        sink: TurnSink,
        tasks: TaskSet,
        on_idle: Callable[[], None],
        on_lost: Callable[[LeaseLost | RoomEnded], None],
        on_hang_up: Callable[[], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``on_idle``: called when no reply is left; ``on_lost``: a save found
        the room is no longer ours, or the call over; ``on_hang_up``: the agent
        ended the call (its goodbye is said)."""
        self.state = state
        self._on_idle = on_idle
        self._on_lost = on_lost
        self._on_hang_up = on_hang_up
        self._profile = profile
        self._providers = providers
        self._link = link
        self._states = states
        self._sink = sink
        self._tasks = tasks
        self._clock = clock
        self._candidate: Reply | None = None  # produced at a pause, not yet released
        self._active: _Active | None = None  # released: thinking or speaking
        self._prefill = Prefill(providers.llm, tasks)

    @property
    def idle(self) -> bool:
        return self._active is None and self._candidate is None

    def _reply(
        self,
        audio: Float32Array | None = None,
        user_text: str | None = None,
        fixed_text: str | None = None,
        history: list[HistoryItem] | None = None,
        speculative: bool = False,
    ) -> Reply:
        self._prefill.drop()  # the reply evaluates its prompt itself
        return Reply(
            self._providers,
            self._profile,
            self._link.audio,
            audio=audio,
            user_text=user_text,
            fixed_text=fixed_text,
            history=self._window() if history is None else history,
            clock=self._clock,
            speculative=speculative,
        )

    # -- what the caller does -----------------------------------------------------

    async def greet(self) -> None:
        self.state.greeted = True
        await self._states.save(self.state)
        await self._release(self._reply(fixed_text=self._profile.greeting), speech_end=None)

    async def answer_pending(self) -> None:
        """Resumed mid-turn: answer what the caller already said."""
        history = self._window()
        text = history.pop().text if history and history[-1].role == "user" else ""
        reply = self._reply(user_text=text, history=history)
        await self._release(reply, speech_end=None)

    async def listen(self) -> None:
        await self._say_state("listening")
        self.prefill()

    async def speech_started(self) -> None:
        if self._active is not None:
            await self.interrupt(notify=True)

    async def paused(self, audio: Float32Array) -> None:
        self._candidate = self._reply(audio=audio, speculative=True)
        self._candidate.start(self._tasks)
        self._tasks.spawn(self._interim_caption(self._candidate), "interim")

    async def resumed(self) -> None:
        await self.drop_candidate()

    async def turn_ended(self, audio: Float32Array, speech_end: float) -> None:
        reply, self._candidate = self._candidate, None
        if reply is None:
            reply = self._reply(audio=audio)
            reply.start(self._tasks)
        reply.marks.turn_decided = self._clock()
        reply.decided()
        active = self._active = _Active(reply)
        active.task = self._spawn(self._answer(active, speech_end))

    # -- replies --------------------------------------------------------------------

    async def _interim_caption(self, reply: Reply) -> None:
        """Show the caller what was heard so far while the turn may go on."""
        try:
            text = await reply.transcript()
        except ProviderError:
            return
        if text and not reply.released:
            seq = self.state.next_seq
            await self._link.send(Transcript(role="user", text=text, final=False, seq=seq))

    async def _answer(self, active: _Active, speech_end: float) -> None:
        await self._say_state("thinking")
        try:
            text = await active.reply.transcript()
        except ProviderError:
            # No provider could transcribe it: the caller hears the reply's
            # apology and "unavailable" phrase, and may say it again.
            await self._play(active, speech_end)
            return
        if not text:  # noise, not words: nothing to answer
            await self._drop(active)
            return
        seq = self.state.take_seq()
        self.state.add_user(text)
        self.state.pending_user_text = text
        await self._states.save(self.state)
        await self._link.send(Transcript(role="user", text=text, final=True, seq=seq))
        now = self._clock()
        await self._sink.record(
            Turn(self.state.room_id, seq, Speaker.USER, text, started_at=speech_end, ended_at=now)
        )
        await self._play(active, speech_end)

    async def _release(self, reply: Reply, speech_end: float | None) -> None:
        reply.start(self._tasks)
        active = self._active = _Active(reply)
        active.task = self._spawn(self._play(active, speech_end))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        async def guarded() -> None:
            try:
                await work
            except (LeaseLost, RoomEnded) as e:
                self._on_lost(e)

        return self._tasks.spawn(guarded(), "reply")

    async def _play(self, active: _Active, speech_end: float | None) -> None:
        reply = active.reply
        active.seq = self.state.take_seq()
        reply.release(speech_end)

        async def chunk(text: str) -> None:
            await self._link.send(Transcript(role="agent", text=text, final=False, seq=active.seq))

        async def first_audio() -> None:
            await self._say_state("speaking")

        await reply.play(chunk, first_audio)
        if reply.failure is not None:
            await self._provider_failed(reply.failure)
        await self._finish(active, interrupted=False)

    async def _drop(self, active: _Active) -> None:
        await active.reply.cancel()
        if self._active is active:
            self._active = None
            self._on_idle()
        await self._say_state("listening")

    async def interrupt(self, notify: bool) -> None:
        """Cut the active reply short: the caller spoke over it (``notify``), or
        the room is closing."""
        active, self._active = self._active, None
        if active is None:
            return
        await cancel_and_wait(active.task)
        await active.reply.cancel()
        if notify:
            BARGE_INS.inc()
            await self._sink.event(barge_in(self.state.room_id, active.seq, self._clock()))
            await self._link.send(Interrupt())
            await self._say_state("listening")
        if active.seq >= 0:
            await self._finish(active, interrupted=True)

    async def drop_candidate(self) -> None:
        if self._candidate is not None:
            await self._candidate.cancel()
            self._candidate = None

    async def _finish(self, active: _Active, interrupted: bool) -> None:
        if self._active is active:
            self._active = None
            self._on_idle()
        reply, seq = active.reply, active.seq
        text = reply.heard_text() if interrupted else reply.full_text()
        self.state.add_agent(text)
        self.state.pending_user_text = None
        await self._states.save(self.state)
        await self._link.send(
            Transcript(role="agent", text=text, final=True, seq=seq, interrupted=interrupted)
        )
        if not interrupted:
            await self._say_state("listening")
        self.prefill()
        marks = reply.marks
        observe_turn(marks)
        now = self._clock()
        record_turn(
            FinishedTurn(
                self.state.room_id,
                seq,
                interrupted,
                marks,
                reply.record,
                now,
                user_text=reply.user_text,
                agent_text=text,
            )
        )
        if text or reply.started_at is not None:
            turn = Turn(
                self.state.room_id,
                seq,
                Speaker.AGENT,
                text,
                started_at=reply.started_at or now,
                ended_at=now,
                interrupted=interrupted,
                marks=marks,
                tools=reply.tools.uses,
            )
            await self._sink.record(turn)
        for event in reply_events(self.state.room_id, seq, reply.record):
            await self._sink.event(event)
        if reply.tools.end_requested and not interrupted:
            log.info("the agent ends the call", room=self.state.room_id)
            await self._link.send(HangUp())
            self._on_hang_up()

    def prefill(self) -> None:
        """Let the LLM evaluate the prompt so far while the caller talks (when
        its models have nothing more urgent to do)."""
        self._prefill.start(chat_messages(self._profile, self._window()))

    def release(self) -> None:
        """The room is done here: the LLM may give what it holds of it to another room."""
        self._prefill.release(chat_messages(self._profile, self._window()))

    def _window(self) -> list[HistoryItem]:
        return self.state.prompt_window(self._profile.generation.history_turns)

    async def _say_state(self, state: AgentState) -> None:
        await self._link.send(State(state=state))

    async def _provider_failed(self, error: ProviderError) -> None:
        log.error("provider failed", room=self.state.room_id, code=error.code, error=error.message)
        await self._link.send(Error(code=error.code, message="the agent could not answer that"))
