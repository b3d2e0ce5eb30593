"""The call events a finished reply leaves behind: the caller barging in, each
provider fault it met and each fallback to the next provider of a chain. Built
from the reply's record once the turn is done, so nothing on the audio path
waits for them; the turn sink stores them with the turn."""

from __future__ import annotations

from voxfleet.domain.events import CallEvent, Detail, EventKind
from voxfleet.observability.spans import ReplyRecord


def barge_in(room_id: str, seq: int, at: float) -> CallEvent:
    """The caller spoke over reply ``seq`` (-1: before it had a turn number)."""
    return CallEvent(room_id, at, EventKind.INTERRUPTION, {"seq": seq if seq >= 0 else None})


def reply_events(room_id: str, seq: int, record: ReplyRecord) -> list[CallEvent]:
    events: list[CallEvent] = []
    for mark in record.faults:
        fault = mark.fault
        detail: Detail = {
            "seq": seq,
            "stage": fault.kind,
            "provider": fault.provider,
            "code": fault.error.code,
            "retrying": fault.retrying,
        }
        events.append(CallEvent(room_id, mark.at, EventKind.PROVIDER_FAULT, detail))
        to = _next_in_chain(record, fault.kind, fault.provider)
        if not fault.retrying and to is not None:
            moved: Detail = {"seq": seq, "stage": fault.kind, "from": fault.provider, "to": to}
            events.append(CallEvent(room_id, mark.at, EventKind.FALLBACK, moved))
    return sorted(events, key=lambda event: event.at)


def _next_in_chain(record: ReplyRecord, kind: str, failed: str) -> str | None:
    """The member a fallback chain asks after ``failed`` gave up, as the chain
    itself names it (providers/chain.py): a chain's name joins its members'."""
    for stage in record.stages:
        names = stage.provider.split("+")
        if stage.kind == kind and failed in names:
            after = names.index(failed) + 1
            return names[after] if after < len(names) else None
    return None
