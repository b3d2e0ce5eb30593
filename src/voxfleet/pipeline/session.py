"""The voice pipeline of one room, on the agent side.

Caller events come from an InboundLink (pipeline/ports.py); audio goes through
the turn detector (pipeline/turns.py), whose signals drive turn-taking
(pipeline/turn_taking.py). The session owns the room's life: greet or resume,
serve until the caller hangs up or is gone, take no input while it is handed
over (frozen) or its lease is unconfirmed (paused), and leave. All
conversation state lives in ``state`` and is saved at every change, so another
agent process can pick the room up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from voxfleet.aio import TaskSet
from voxfleet.dispatch.base import RoomStateStore
from voxfleet.domain.calls import EndReason
from voxfleet.domain.conversation import ConversationState
from voxfleet.domain.profiles import Profile
from voxfleet.errors import LeaseLost, RoomEnded
from voxfleet.messages.client import HangUp
from voxfleet.observability.logging import bound, get_logger
from voxfleet.pipeline.endpointing import EndpointConfig
from voxfleet.pipeline.ports import (
    AudioIn,
    CallerGone,
    CallerHungUp,
    InboundLink,
    OutboundLink,
    StreamPosition,
    TurnSink,
)
from voxfleet.pipeline.turn_taking import TurnTaker
from voxfleet.pipeline.turns import Paused, Resumed, SpeechStarted, TurnDetector, TurnEnded
from voxfleet.providers.base import Providers

log = get_logger(__name__)


class RoomSession:
    def __init__(
        self,
        state: ConversationState,
        profile: Profile,
        providers: Providers,
        inbound: InboundLink,
        outbound: OutboundLink,
        states: RoomStateStore,
        sink: TurnSink,
        endpointing: EndpointConfig | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state = state
        self._greeting = profile.greeting
        self._inbound = inbound
        self._outbound = outbound
        self._states = states
        self._tasks = TaskSet(f"room:{state.room_id}")
        self._turns = TurnTaker(
            state,
            profile,
            providers,
            outbound,
            states,
            sink,
            self._tasks,
            on_idle=self._check_idle,
            on_lost=self._lost_room,
            on_hang_up=lambda: self.end(EndReason.AGENT_ENDED.value),
            clock=clock,
        )
        start = StreamPosition(state.audio_epoch, state.audio_seq)
        self._detector = TurnDetector(
            providers.vad.stream(), endpointing or EndpointConfig(), start, clock
        )
        self.hangup_reason: str | None = None
        self._stopped = asyncio.Event()
        self._handover_wanted = False
        self.frozen = asyncio.Event()  # set: idle and handing over; no input is taken
        self._paused = False

    # -- lifecycle ------------------------------------------------------------

    async def run(self) -> None:
        """Serve the room until the caller hangs up or is gone, the call ends,
        or ``stop()``."""
        with bound(room=self.state.room_id):  # on every line its tasks log
            serve = self._tasks.spawn(self._serve(), "serve")
            stopped = self._tasks.spawn(self._stopped.wait(), "stopped")
            try:
                await asyncio.wait([serve, stopped], return_when=asyncio.FIRST_COMPLETED)
                if serve.done() and not serve.cancelled() and (error := serve.exception()):
                    raise error
            finally:
                await self._close()

    def stop(self) -> None:
        """Leave the room now (the lease moved on): no hangup, nothing saved."""
        self._stopped.set()

    def end(self, reason: str) -> None:
        """The call is over (its edge ended it): leave for good."""
        if self.hangup_reason is None:
            self.hangup_reason = reason
        self._stopped.set()

    @property
    def paused(self) -> bool:
        return self._paused

    @paused.setter
    def paused(self, value: bool) -> None:
        """The lease is unconfirmed (True): take no input; someone else may hold
        the room by now."""
        self._paused = value
        self._update_hold()

    async def freeze_when_idle(self) -> None:
        """For a handover: wait for a turn boundary, then take no input. The
        caller's audio is not lost: the next agent hears it."""
        self._handover_wanted = True
        self._check_idle()
        await self.frozen.wait()

    def unfreeze(self) -> None:
        self._handover_wanted = False
        self.frozen.clear()
        self._update_hold()

    async def save(self) -> None:
        await self._states.save(self.state)

    def _check_idle(self) -> None:
        idle = self._turns.idle and not self._detector.in_utterance
        if self._handover_wanted and idle and not self.frozen.is_set():
            self.frozen.set()
            self._update_hold()

    def _update_hold(self) -> None:
        if self._paused or self.frozen.is_set():
            self._inbound.hold()
        else:
            self._inbound.release()

    def _lost_room(self, error: LeaseLost | RoomEnded) -> None:
        if isinstance(error, RoomEnded):
            log.info("call ended, leaving room", room=self.state.room_id)
            self.end("room_ended")
        else:
            log.info("lease lost, leaving room", room=self.state.room_id)
            self.stop()

    async def _close(self) -> None:
        await self._turns.drop_candidate()
        if not self._stopped.is_set() or self.hangup_reason is not None:
            try:
                await self._turns.interrupt(notify=False)
            except (LeaseLost, RoomEnded):
                log.info("room lost, reply not recorded", room=self.state.room_id)
        await self._tasks.cancel_all()
        self._turns.release()

    # -- input ------------------------------------------------------------------

    async def _serve(self) -> None:
        try:
            if not self.state.greeted and self._greeting:
                await self._turns.greet()
            elif self.state.pending_user_text:
                await self._turns.answer_pending()
            else:
                await self._turns.listen()
            async for event in self._inbound.events():
                if isinstance(event, AudioIn):
                    await self._on_audio(event)
                elif isinstance(event, CallerHungUp):
                    self.hangup_reason = event.reason
                    if event.reason == EndReason.OPERATOR_ENDED.value:
                        # Only the agent's down stream reaches the caller's edge.
                        await self._outbound.send(HangUp(reason="operator_ended"))
                    return
                elif isinstance(event, CallerGone):
                    log.info("caller gone, room ends", room=self.state.room_id)
                    self.hangup_reason = EndReason.CALLER_DISCONNECTED.value
                    return
        except (LeaseLost, RoomEnded) as e:
            self._lost_room(e)

    async def _on_audio(self, event: AudioIn) -> None:
        for signal in self._detector.push(event.pcm, event.position):
            if isinstance(signal, SpeechStarted):
                await self._turns.speech_started()
            elif isinstance(signal, Paused):
                await self._turns.paused(signal.audio)
            elif isinstance(signal, Resumed):
                await self._turns.resumed()
            elif isinstance(signal, TurnEnded):
                await self._turns.turn_ended(signal.audio, self._detector.last_voice_at)
        point = self._detector.resume_point
        self.state.audio_epoch, self.state.audio_seq = point.epoch, point.seq
        self._check_idle()
