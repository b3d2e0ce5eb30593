"""What a room's agent tells every monitor replica as it happens, on the bus
topic ``monitor/events``, and what the monitor passes on to each dashboard
unchanged: ``{"type": "event", "kind", "call_id", "at", "agent_id", "detail"}``.

``at`` is when the agent noted it (epoch seconds, the agent's clock; for a
turn or a call event: once stored), so a dashboard can tell how late the
event reached it (a call event's own time, which may be earlier, stays in
the store). No transcript text travels
here: the snapshot carries the caller's last words to signed-in users."""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from voxfleet.domain.calls import Turn
from voxfleet.domain.events import CallEvent, Detail


class LiveKind(StrEnum):
    ATTACHED = "attached"  # an agent took the room (first time, failover or handover)
    ENDED = "ended"  # the agent saw the call end; detail.reason
    TURN = "turn"  # a turn was stored; detail: seq, speaker, interrupted, latency ms
    FAILOVER = "failover"
    HANDOVER = "handover"
    RESUME = "resume"
    INTERRUPTION = "interruption"
    PROVIDER_FAULT = "provider_fault"
    FALLBACK = "fallback"


class LiveEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")  # newer agents may add fields
    type: Literal["event"] = "event"
    kind: LiveKind
    call_id: str = Field(max_length=64)
    at: float
    agent_id: str | None = None
    detail: Detail = Field(default_factory=dict)

    def encode(self) -> bytes:
        return self.model_dump_json().encode()


def room_event(
    kind: LiveKind, call_id: str, agent_id: str | None, at: float | None = None, **detail: str
) -> LiveEvent:
    return LiveEvent(
        kind=kind,
        call_id=call_id,
        at=time.time() if at is None else at,
        agent_id=agent_id,
        detail=dict(detail),
    )


def of_turn(turn: Turn, agent_id: str | None = None) -> LiveEvent:
    detail: Detail = {
        "seq": turn.seq,
        "speaker": turn.speaker.value,
        "interrupted": turn.interrupted,
        **turn.marks.as_ms_from_speech_end(),
    }
    return LiveEvent(
        kind=LiveKind.TURN, call_id=turn.call_id, at=time.time(), agent_id=agent_id, detail=detail
    )


def of_call_event(event: CallEvent, agent_id: str | None = None) -> LiveEvent:
    return LiveEvent(
        kind=LiveKind(event.kind.value),
        call_id=event.call_id,
        at=time.time(),
        agent_id=agent_id,
        detail=dict(event.detail),
    )


def of_stored(item: Turn | CallEvent) -> LiveEvent:
    return of_turn(item) if isinstance(item, Turn) else of_call_event(item)
