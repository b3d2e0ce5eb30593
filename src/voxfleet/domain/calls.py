"""Calls and their turns: what a conversation is, independent of storage."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from enum import StrEnum


class CallStatus(StrEnum):
    CREATED = "created"  # the API created it; no caller socket yet
    ACTIVE = "active"  # a caller is connected
    ENDED = "ended"


class EndReason(StrEnum):
    CALLER_ENDED = "caller_ended"  # the client sent {"type": "end"}
    CALLER_DISCONNECTED = "caller_disconnected"  # the socket closed without "end"
    FLOOD = "flood"  # the client sent frames faster than real time
    PROTOCOL_ERROR = "protocol_error"  # the client kept sending bad frames
    MAX_DURATION = "max_duration"
    AGENT_ENDED = "agent_ended"  # the agent said goodbye and hung up (its end-the-call tool)
    AGENT_ERROR = "agent_error"
    NO_AGENT = "no_agent"  # no agent attached in time
    NEVER_CONNECTED = "never_connected"  # the token expired unused
    SERVER_SHUTDOWN = "server_shutdown"
    OPERATOR_ENDED = "operator_ended"  # an admin ended it from the monitor


class Speaker(StrEnum):
    USER = "user"
    AGENT = "agent"


CALL_ID_PATTERN = re.compile(r"c_[A-Za-z0-9_-]{16}")


def new_call_id() -> str:
    """A URL-safe, unguessable call (room) id: ``c_`` and 16 base64url characters."""
    return "c_" + secrets.token_urlsafe(12)


def is_call_id(text: str) -> bool:
    """Whether ``text`` has the shape of a call id (checked before any query,
    so a stray byte never reaches the database)."""
    return CALL_ID_PATTERN.fullmatch(text) is not None


@dataclass(slots=True)
class LatencyMarks:
    """Wall-clock instants (epoch seconds) along one reply, from the caller's last
    word to the first audio frame of the answer leaving the agent."""

    speech_end: float | None = None
    turn_decided: float | None = None  # the end of the caller's turn was decided
    stt_done: float | None = None
    llm_first_token: float | None = None
    tts_first_audio: float | None = None
    first_audio_sent: float | None = None

    def as_ms_from_speech_end(self) -> dict[str, float]:
        """Each mark as milliseconds after the end of the caller's speech."""
        if self.speech_end is None:
            return {}
        out: dict[str, float] = {}
        for name in ("stt_done", "llm_first_token", "tts_first_audio", "first_audio_sent"):
            value = getattr(self, name)
            if value is not None:
                out[name] = round((value - self.speech_end) * 1000.0, 1)
        return out


@dataclass(slots=True, frozen=True)
class ToolUse:
    """A tool the agent called during a turn: its arguments and what it got back."""

    name: str
    arguments: dict[str, object]
    result: str

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "arguments": self.arguments, "result": self.result}


@dataclass(slots=True)
class Turn:
    call_id: str
    seq: int
    speaker: Speaker
    text: str
    started_at: float
    ended_at: float
    interrupted: bool = False
    marks: LatencyMarks = field(default_factory=LatencyMarks)
    tools: list[ToolUse] = field(default_factory=list)
