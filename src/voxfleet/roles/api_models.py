"""The shapes of the landing's HTTP answers: response models, so that
``/openapi.json`` is the truth of the HTTP half of the protocol
(docs/protocol.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from voxfleet.domain.calls import CallStatus, EndReason, Speaker
from voxfleet.store.repository import CallRecord


def _utc(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


class LiveKitJoin(BaseModel):
    """Where and how the caller joins the call's LiveKit room (transport=livekit)."""

    url: str = Field(description="The LiveKit server (wss://...).")
    room: str = Field(description="The room to join: the call id.")
    token: str = Field(description="Join token for this room only, as identity `caller`.")
    token_expires_at: datetime = Field(description="The token admits a join until then.")


class CallCreated(BaseModel):
    id: str
    profile: str
    status: CallStatus
    media_url: str | None = Field(
        description="Open the media socket here (token included); null with LiveKit."
    )
    token_expires_at: datetime = Field(
        description="The media_url (or, with LiveKit, the join token) admits the caller until then."
    )
    read_token: str = Field(description="Reads this call: `Authorization: Bearer <token>`.")
    read_token_expires_at: datetime
    livekit: LiveKitJoin | None = Field(
        None, description="Set when the server's transport is LiveKit: join this room."
    )


class ToolUseOut(BaseModel):
    name: str
    arguments: dict[str, Any]
    result: str


class TurnOut(BaseModel):
    seq: int
    speaker: Speaker
    text: str
    interrupted: bool
    started_at: datetime
    ended_at: datetime
    latency_ms: dict[str, float] = Field(
        description="Marks of an agent reply, in ms after the end of the caller's speech."
    )
    tools: list[ToolUseOut] = Field(
        default_factory=list, description="Tools the agent called in this turn, in order."
    )


class CallHeadOut(BaseModel):
    """What every view of a call shows of it, turns aside."""

    id: str
    profile: str
    status: CallStatus
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    end_reason: EndReason | None


def call_head(call: CallRecord) -> dict[str, Any]:
    """A stored call's CallHeadOut fields (for the models that extend it)."""
    return {
        "id": call.id,
        "profile": call.profile,
        "status": call.status,
        "created_at": datetime.fromtimestamp(call.created_at, UTC),
        "started_at": _utc(call.started_at),
        "ended_at": _utc(call.ended_at),
        "end_reason": call.end_reason,
    }


class CallOut(CallHeadOut):
    turns: list[TurnOut]

    @classmethod
    def of(cls, call: CallRecord) -> CallOut:
        return cls(
            **call_head(call),
            turns=[
                TurnOut(
                    seq=t.seq,
                    speaker=t.speaker,
                    text=t.text,
                    interrupted=t.interrupted,
                    started_at=datetime.fromtimestamp(t.started_at, UTC),
                    ended_at=datetime.fromtimestamp(t.ended_at, UTC),
                    latency_ms=t.marks.as_ms_from_speech_end(),
                    tools=[ToolUseOut(**use.as_dict()) for use in t.tools],
                )
                for t in call.turns
            ],
        )


class ProfileOut(BaseModel):
    name: str
    title: str


class ProfilesOut(BaseModel):
    default: str
    profiles: list[ProfileOut]


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorOut(BaseModel):
    error: ErrorBody


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorOut} for status in statuses}
