"""The client protocol of the media socket (docs/protocol.md), as types.

Every text frame is one JSON object with a ``type``. The server sends
``ServerMessage``s; a client sends ``ClientMessage``s (today only ``end``).
Agents produce the ``AgentMessage`` part of what a caller sees; the edge adds
``ready`` and ``ended`` and relays the rest unchanged (but ``hang_up``, which
it turns into ``ended``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from voxfleet.errors import ProtocolError

AgentState = Literal["queued", "listening", "thinking", "speaking"]


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def to_json(self) -> str:
        return self.model_dump_json(exclude_none=True)


class Ready(_Message):
    """First message: an agent took the call and audio may flow."""

    type: Literal["ready"] = "ready"
    call_id: str
    sample_rate: int  # agent audio the server sends
    input_sample_rate: int  # caller audio the server takes
    max_frame_ms: int
    wait_ms: float  # queued to attached
    resume_url: str | None = None  # re-open the call here after a drop
    # On a resumed socket: the first audio frame of the previous socket (counted
    # from 1) the agent did not hear; send it and the rest again, then go on.
    resume_from: int | None = None


class State(_Message):
    type: Literal["state"] = "state"
    state: AgentState


class Transcript(_Message):
    """A caption; later texts of the same ``seq`` replace earlier ones."""

    type: Literal["transcript"] = "transcript"
    role: Literal["user", "agent"]
    text: str
    final: bool
    seq: int
    interrupted: bool | None = None  # on an agent's final caption


class Interrupt(_Message):
    """The caller spoke over the agent: drop every queued agent sample now."""

    type: Literal["interrupt"] = "interrupt"


class Error(_Message):
    type: Literal["error"] = "error"
    code: str
    message: str


class Reconnect(_Message):
    """This server is going away (a deploy): open ``resume_url`` now, through
    the same public address; the call goes on there."""

    type: Literal["reconnect"] = "reconnect"
    resume_url: str


class Ended(_Message):
    type: Literal["ended"] = "ended"
    reason: str


class HangUp(_Message):
    """The agent ends the call (it said goodbye: the end-the-call tool). Sent
    after the goodbye's audio; the edge ends the call, and the caller gets
    ``ended`` with reason ``agent_ended`` (this message is not relayed), or
    ``operator_ended`` when an operator ended the call from the monitor."""

    type: Literal["hang_up"] = "hang_up"
    reason: Literal["agent_ended", "operator_ended"] = "agent_ended"


class End(_Message):
    """The client hangs up. Fields a newer client adds are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    type: Literal["end"] = "end"


AgentMessage = Annotated[
    State | Transcript | Interrupt | Error | HangUp, Field(discriminator="type")
]
ServerMessage = Annotated[
    Ready | State | Transcript | Interrupt | Error | Reconnect | Ended,
    Field(discriminator="type"),
]
ClientMessage = End

_CLIENT_TYPES = {"end": End}
_OBJECT = TypeAdapter(dict[str, object])


def parse_client_message(text: str) -> ClientMessage:
    """A client's text frame as a message; ProtocolError (with the documented
    ``invalid_json`` / ``unknown_type`` code) naming what is wrong."""
    try:
        body = _OBJECT.validate_json(text)
    except ValidationError as e:
        why = e.errors()[0]
        if why["type"] == "json_invalid":
            raise ProtocolError(
                f"text message is not JSON: {why['msg']}", code="invalid_json"
            ) from e
        raise ProtocolError("text message must be a JSON object", code="invalid_json") from e
    kind = body.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("text message must have a string 'type'", code="invalid_json")
    model = _CLIENT_TYPES.get(kind)
    if model is None:
        raise ProtocolError(f"unknown message type {kind[:64]!r}", code="unknown_type")
    try:
        return model.model_validate(body)
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "message"
        raise ProtocolError(
            f"{kind} message: {field}: {first['msg']}", code="invalid_message"
        ) from e
