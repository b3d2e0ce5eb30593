"""Per-stage latency of recent replies, for the monitor's charts: a read-only
query over the stored turns' latency marks (the store owns the writes). Each
reply gives STT (speech end -> transcript), LLM (-> first token), TTS (-> first
audio) and the total to the first audio sent, in milliseconds."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlalchemy import select

from voxfleet.errors import ConfigError, InvalidRequest
from voxfleet.roles.api_models import error_responses
from voxfleet.roles.deps import RuntimeDep
from voxfleet.roles.monitor_auth import MonitorUserDep
from voxfleet.store import session_factory
from voxfleet.store.models import TurnRow

router = APIRouter(prefix="/api", responses=error_responses(401, 403, 422))
MAX_MINUTES = 60
MAX_TURNS = 2000


class ReplyLatency(BaseModel):
    at: float  # epoch seconds the caller stopped speaking
    stt_ms: float | None
    llm_ms: float | None
    tts_ms: float | None
    total_ms: float


class LatencyOut(BaseModel):
    since: float
    replies: list[ReplyLatency]


def _ms(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds() * 1000, 1)


def _epoch(value: datetime) -> float:
    # SQLite gives back naive datetimes; everything stored is UTC.
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def minutes_of(request: Request) -> int:
    raw = request.query_params.get("minutes", "10")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_MINUTES:
        raise InvalidRequest(
            f"minutes: expected a whole number from 1 to {MAX_MINUTES}", field="minutes"
        )
    return int(raw)


@router.get("/latency")
async def latency(request: Request, _who: MonitorUserDep, runtime: RuntimeDep) -> LatencyOut:
    """Replies of the last ``minutes`` (default 10) that reached the caller."""
    if runtime.engine is None:
        raise ConfigError("this process has no store (it plays no monitor role)")
    since = time.time() - 60 * minutes_of(request)
    query = (
        select(
            TurnRow.speech_end_at,
            TurnRow.stt_done_at,
            TurnRow.llm_first_token_at,
            TurnRow.tts_first_audio_at,
            TurnRow.first_audio_sent_at,
        )
        .where(
            TurnRow.speech_end_at >= datetime.fromtimestamp(since, UTC),
            TurnRow.first_audio_sent_at.is_not(None),
        )
        .order_by(TurnRow.speech_end_at)
        .limit(MAX_TURNS)
    )
    async with session_factory(runtime.engine)() as session:
        rows = (await session.execute(query)).all()
    replies = []
    for speech_end, stt, llm, tts, sent in rows:
        total = _ms(speech_end, sent)
        if speech_end is None or total is None:
            continue
        replies.append(
            ReplyLatency(
                at=_epoch(speech_end),
                stt_ms=_ms(speech_end, stt),
                llm_ms=_ms(stt, llm),
                tts_ms=_ms(llm, tts),
                total_ms=total,
            )
        )
    return LatencyOut(since=since, replies=replies)
