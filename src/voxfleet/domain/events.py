"""Call events: what happened to a call besides its turns (a failover, a
handover, a caller resuming, a barge-in, a provider fault or fallback). One per
incident, never per audio frame; the store keeps them beside the turns and the
monitor's inspector lays both out on one timeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class EventKind(StrEnum):
    FAILOVER = "failover"  # an agent took the room after its holder's lease lapsed
    HANDOVER = "handover"  # a draining agent handed the room over
    RESUME = "resume"  # the caller reconnected within the resume window
    INTERRUPTION = "interruption"  # the caller barged in over the agent
    PROVIDER_FAULT = "provider_fault"  # a provider call failed
    FALLBACK = "fallback"  # the chain moved on to the next provider


# A detail value: what a JSON column keeps.
Detail = dict[str, str | int | float | bool | None]


@dataclass(slots=True, frozen=True)
class CallEvent:
    call_id: str
    at: float  # epoch seconds
    kind: EventKind
    detail: Detail = field(default_factory=dict)
