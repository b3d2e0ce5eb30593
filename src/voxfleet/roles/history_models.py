"""The monitor history's query parameters and answers: filters parsed from the
query string (each bad one a 422 naming it) and the response models that make
``/openapi.json`` true for ``GET /api/calls`` and ``/api/calls/{id}/timeline``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Query
from pydantic import BaseModel, Field

from voxfleet.domain.calls import EndReason, Speaker
from voxfleet.domain.events import CallEvent, EventKind
from voxfleet.errors import InvalidRequest
from voxfleet.roles.api_models import CallHeadOut, call_head
from voxfleet.store.history import HistoryEntry, HistoryFilter
from voxfleet.store.repository import CallRecord

MAX_LIMIT = 200
MARKS = ("speech_end", "stt_done", "llm_first_token", "tts_first_audio", "first_audio_sent")

FromQ = Annotated[
    str | None, Query(alias="from", description="Calls created at or after (ISO 8601).")
]
ToQ = Annotated[str | None, Query(alias="to", description="Calls created before (ISO 8601).")]
ProfileQ = Annotated[str | None, Query(max_length=64, description="Only this profile.")]
EndReasonQ = Annotated[str | None, Query(description="Only calls that ended so.")]
FailoverQ = Annotated[
    str | None, Query(description="true: only calls an agent took over; false: only the others.")
]
TextQ = Annotated[
    str | None, Query(max_length=200, description="Text in any turn (case-insensitive).")
]
BeforeQ = Annotated[str | None, Query(description="The next_before of the previous page.")]


def _instant(name: str, value: str | None) -> float | None:
    if value is None or value == "":
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(f"{name}: not an ISO 8601 time: {value[:40]!r}", field=name) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _flag(name: str, value: str | None) -> bool | None:
    if value is None or value == "":
        return None
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise InvalidRequest(f"{name}: must be true or false", field=name)


def _reason(value: str | None) -> EndReason | None:
    if value is None or value == "":
        return None
    try:
        return EndReason(value)
    except ValueError:
        known = ", ".join(r.value for r in EndReason)
        raise InvalidRequest(f"end_reason: one of {known}", field="end_reason") from None


def _cursor(value: str | None) -> tuple[float, str] | None:
    if value is None or value == "":
        return None
    stamp, sep, call_id = value.partition("~")
    at = _instant("before", stamp) if sep and call_id else None
    if at is None:
        raise InvalidRequest("before: not a cursor from next_before", field="before")
    return at, call_id


def parse_limit(value: int | None, default: int, most: int, name: str = "limit") -> int:
    if value is None:
        return default
    if not 1 <= value <= most:
        raise InvalidRequest(f"{name}: between 1 and {most}", field=name)
    return value


def history_filter(
    since: str | None,
    until: str | None,
    profile: str | None,
    end_reason: str | None,
    had_failover: str | None,
    q: str | None,
    before: str | None = None,
) -> HistoryFilter:
    start, end = _instant("from", since), _instant("to", until)
    if start is not None and end is not None and end <= start:
        raise InvalidRequest("to: must be after from", field="to")
    return HistoryFilter(
        since=start,
        until=end,
        profile=profile or None,
        end_reason=_reason(end_reason),
        had_failover=_flag("had_failover", had_failover),
        text=q or None,
        before=_cursor(before),
    )


class CallSummaryOut(CallHeadOut):
    had_failover: bool

    @classmethod
    def of(cls, entry: HistoryEntry) -> CallSummaryOut:
        return cls(**call_head(entry.call), had_failover=entry.had_failover)


class CallListOut(BaseModel):
    calls: list[CallSummaryOut]
    next_before: str | None = Field(
        description="Pass as `before` for the next (older) page; null on the last page."
    )


def cursor_of(entry: HistoryEntry) -> str:
    stamp = datetime.fromtimestamp(entry.call.created_at, UTC).isoformat()
    return f"{stamp}~{entry.call.id}"


class TimelineTurnOut(BaseModel):
    seq: int
    speaker: Speaker
    text: str
    interrupted: bool
    started_at: datetime
    ended_at: datetime
    marks: dict[str, datetime] = Field(
        description="speech_end, stt_done, llm_first_token, tts_first_audio, first_audio_sent."
    )


class TimelineItemOut(BaseModel):
    at: datetime
    kind: str = Field(description="A turn mark (turn_start, speech_end, ...) or an event kind.")
    seq: int | None = Field(None, description="The turn this item belongs to, if any.")
    detail: dict[str, str | int | float | bool | None] = Field(default_factory=dict)


class TimelineOut(BaseModel):
    call: CallSummaryOut
    turns: list[TimelineTurnOut]
    items: list[TimelineItemOut] = Field(description="Marks and events, oldest first.")


def timeline_of(call: CallRecord, events: list[CallEvent]) -> TimelineOut:
    entry = HistoryEntry(call, any(e.kind is EventKind.FAILOVER for e in events))
    items: list[TimelineItemOut] = []
    out_turns: list[TimelineTurnOut] = []
    for turn in call.turns:
        marks = {n: v for n in MARKS if (v := getattr(turn.marks, n)) is not None}
        out_turns.append(
            TimelineTurnOut(
                seq=turn.seq,
                speaker=turn.speaker,
                text=turn.text,
                interrupted=turn.interrupted,
                started_at=datetime.fromtimestamp(turn.started_at, UTC),
                ended_at=datetime.fromtimestamp(turn.ended_at, UTC),
                marks={n: datetime.fromtimestamp(v, UTC) for n, v in marks.items()},
            )
        )
        stamps = [("turn_start", turn.started_at), *marks.items(), ("turn_end", turn.ended_at)]
        items += [TimelineItemOut(at=_at(at), kind=kind, seq=turn.seq) for kind, at in stamps]
    for event in events:
        seq = event.detail.get("seq")
        items.append(
            TimelineItemOut(
                at=_at(event.at),
                kind=event.kind.value,
                seq=seq if isinstance(seq, int) else None,
                detail=dict(event.detail),
            )
        )
    items.sort(key=lambda item: item.at)
    return TimelineOut(call=CallSummaryOut.of(entry), turns=out_turns, items=items)


def _at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
