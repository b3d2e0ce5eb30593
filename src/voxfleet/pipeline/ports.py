"""What a RoomSession needs from outside, as interfaces: its caller's input
(``InboundLink``), a way to talk to its caller (``OutboundLink``) and where
finished turns go (``TurnSink``). The bus link implements both links
(transport/bus_link.py); a LiveKit room can implement them too, and the
session does not change."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass

from voxfleet.domain.calls import Turn
from voxfleet.domain.events import CallEvent
from voxfleet.messages.client import AgentMessage


@dataclass(slots=True, frozen=True, order=True)
class StreamPosition:
    """A place in the caller's audio: frame ``seq`` of stream ``epoch``. Opaque
    to the session: it stores it, and a later agent resumes from it."""

    epoch: int
    seq: int


@dataclass(slots=True, frozen=True)
class AudioIn:
    """The next frame of caller audio (PCM16LE mono, 16 kHz)."""

    pcm: bytes
    position: StreamPosition


@dataclass(slots=True, frozen=True)
class CallerHungUp:
    reason: str


@dataclass(slots=True, frozen=True)
class CallerGone:
    """Nothing came from the caller's side for too long (its edge died)."""


CallerEvent = AudioIn | CallerHungUp | CallerGone


class InboundLink(ABC):
    """The caller's audio and hang-up, each once and in order."""

    @abstractmethod
    def events(self) -> AsyncIterator[CallerEvent]: ...

    @abstractmethod
    def hold(self) -> None:
        """Take no caller audio until ``release``: while the room is handed over
        or its lease is unconfirmed. What arrives meanwhile is not lost: the
        link gets it again once released."""

    @abstractmethod
    def release(self) -> None: ...


class OutboundLink(ABC):
    """What the agent says to its caller: audio, and captions and states."""

    @abstractmethod
    async def audio(self, pcm: bytes) -> None: ...

    @abstractmethod
    async def send(self, message: AgentMessage) -> None: ...


class TurnSink(ABC):
    """Where finished turns, and the call's events (barge-ins, provider faults,
    failovers), go to be stored (buffered; never blocks the call)."""

    @abstractmethod
    async def record(self, turn: Turn) -> None: ...

    @abstractmethod
    async def event(self, event: CallEvent) -> None: ...
