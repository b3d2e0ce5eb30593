"""What the edge and the agents say about one room on the bus, and its framing.

Three topics per room (bus/base.py): ``up``, the caller's numbered stream
(caller audio, the hang-up); ``down``, the agent's numbered stream (``attached``
first, then its audio and the ``AgentMessage``s the caller sees); ``control``,
unnumbered and idempotent (each stream's ``tick``, ``replay`` requests,
``agent_failed``).

Framing, one byte of kind then the payload: ``A`` + PCM16LE audio; ``J`` +
UTF-8 JSON object with a ``type``; ``N`` + 8-byte epoch + 8-byte number + one
``A`` or ``J`` message. The same bytes cross the in-process bus and Redis."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from voxfleet.errors import MalformedMessage
from voxfleet.messages.client import Error, HangUp, Interrupt, State, Transcript

AUDIO = b"A"
JSON = b"J"
NUMBERED = b"N"
_HEADER = 17  # kind + epoch + number

Stream = Literal["up", "down"]
T = TypeVar("T")


@dataclass(slots=True, frozen=True)
class AudioFrame:
    pcm: bytes


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")  # newer peers may add fields


class Attached(_Message):
    """First message of an agent's stream: it serves the room from now on and
    has heard the caller's stream ``replay_epoch`` up to ``replay_from`` (None:
    it joins the caller's audio where it is now)."""

    type: Literal["attached"] = "attached"
    agent_id: str
    fence: int
    resume: bool
    replay_epoch: int
    replay_from: int | None = None
    sample_rate: int
    enqueued_at: float


class Hangup(_Message):
    type: Literal["hangup"] = "hangup"
    reason: str


class Tick(_Message):
    """The sender of ``stream`` has published it up to ``seq`` of ``epoch``."""

    type: Literal["tick"] = "tick"
    stream: Stream
    epoch: int
    seq: int


class Replay(_Message):
    """The receiver of ``stream`` has ``epoch`` up to ``after``: send the rest again."""

    type: Literal["replay"] = "replay"
    stream: Stream
    epoch: int
    after: int


class AgentFailed(_Message):
    """The agent (started at ``epoch``) could not serve the room: end the call."""

    type: Literal["agent_failed"] = "agent_failed"
    epoch: int


class Resuming(_Message):
    """The caller came back on socket ``new`` (a new stream epoch) after socket
    ``old``: the agent stops taking ``old``'s frames now and says how far it got."""

    type: Literal["resuming"] = "resuming"
    old: int
    new: int


class Heard(_Message):
    """The agent took the caller's stream ``epoch`` up to frame ``seq``, and no
    more of it: the caller sends the rest again on its new socket."""

    type: Literal["heard"] = "heard"
    epoch: int
    seq: int


DownMessage = Annotated[
    Attached | State | Transcript | Interrupt | Error | HangUp, Field(discriminator="type")
]
UpMessage = Hangup
ControlMessage = Annotated[
    Tick | Replay | AgentFailed | Resuming | Heard, Field(discriminator="type")
]


@dataclass(slots=True, frozen=True)
class Numbered(Generic[T]):
    """Message ``seq`` (from 1) of stream ``epoch``."""

    epoch: int
    seq: int
    message: T


_DOWN: TypeAdapter[DownMessage] = TypeAdapter(DownMessage)
_CONTROL: TypeAdapter[ControlMessage] = TypeAdapter(ControlMessage)


def encode(message: AudioFrame | BaseModel) -> bytes:
    if isinstance(message, AudioFrame):
        return AUDIO + message.pcm
    return JSON + message.model_dump_json(exclude_none=True).encode()


def encode_audio(pcm: bytes) -> bytes:
    return AUDIO + pcm


def encode_numbered(epoch: int, seq: int, encoded: bytes) -> bytes:
    """``encoded``: an already encoded ``A`` or ``J`` message."""
    return NUMBERED + epoch.to_bytes(8, "big") + seq.to_bytes(8, "big") + encoded


def _numbered(raw: bytes) -> tuple[int, int, bytes]:
    if raw[:1] != NUMBERED or len(raw) < _HEADER + 1:
        raise MalformedMessage("not a numbered message")
    return int.from_bytes(raw[1:9], "big"), int.from_bytes(raw[9:17], "big"), raw[_HEADER:]


def _json(adapter: TypeAdapter[T], payload: bytes) -> T:
    try:
        return adapter.validate_json(payload)
    except ValidationError as e:
        raise MalformedMessage(f"bad message: {e.errors()[0]['msg']}") from e


def decode_up(raw: bytes) -> Numbered[AudioFrame | UpMessage]:
    epoch, seq, inner = _numbered(raw)
    kind = inner[:1]
    if kind == AUDIO:
        return Numbered(epoch, seq, AudioFrame(inner[1:]))
    if kind == JSON:
        return Numbered(epoch, seq, _json(_UP, inner[1:]))
    raise MalformedMessage(f"unknown message kind {kind!r}")


def decode_down(raw: bytes) -> Numbered[AudioFrame | DownMessage]:
    epoch, seq, inner = _numbered(raw)
    kind = inner[:1]
    if kind == AUDIO:
        return Numbered(epoch, seq, AudioFrame(inner[1:]))
    if kind == JSON:
        return Numbered(epoch, seq, _json(_DOWN, inner[1:]))
    raise MalformedMessage(f"unknown message kind {kind!r}")


def decode_control(raw: bytes) -> ControlMessage:
    if raw[:1] != JSON:
        raise MalformedMessage(f"unknown control message kind {raw[:1]!r}")
    return _json(_CONTROL, raw[1:])


_UP: TypeAdapter[UpMessage] = TypeAdapter(UpMessage)
