"""The monitor's call history: ``GET /api/calls`` (filtered, newest first,
keyset pages), ``GET /api/calls/export`` (JSON or CSV with transcripts,
streamed) and ``GET /api/calls/{id}/timeline`` (the inspector), plus the
``/history`` page. Signed-in users or the admin API key only."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse, StreamingResponse

from voxfleet.errors import ConfigError, InvalidRequest
from voxfleet.roles.api_models import CallOut, error_responses
from voxfleet.roles.deps import RuntimeDep, StoreDep, stored_call
from voxfleet.roles.history_models import (
    MAX_LIMIT,
    BeforeQ,
    CallListOut,
    CallSummaryOut,
    EndReasonQ,
    FailoverQ,
    FromQ,
    ProfileQ,
    TextQ,
    TimelineOut,
    ToQ,
    cursor_of,
    history_filter,
    parse_limit,
    timeline_of,
)
from voxfleet.roles.monitor_auth import MonitorUserDep
from voxfleet.store import session_factory
from voxfleet.store.history import CallHistory
from voxfleet.store.repository import CallRecord

PAGES_DIR = Path(__file__).resolve().parent.parent / "web" / "monitor"
MAX_EXPORT = 10_000
CSV_COLUMNS = (
    "call_id",
    "profile",
    "started_at",
    "end_reason",
    "seq",
    "speaker",
    "text",
    "stt_done_ms",
    "llm_first_token_ms",
    "tts_first_audio_ms",
    "first_audio_sent_ms",
)

router = APIRouter(responses=error_responses(401, 403))


def history_of(runtime: RuntimeDep) -> CallHistory:
    if runtime.engine is None:
        raise ConfigError("this process has no store (it plays no landing, agent or monitor role)")
    return CallHistory(session_factory(runtime.engine))


@router.get("/history", include_in_schema=False)
async def history_page() -> FileResponse:
    return FileResponse(PAGES_DIR / "history.html")


@router.get("/api/calls", responses=error_responses(422))
async def list_calls(
    _who: MonitorUserDep,
    runtime: RuntimeDep,
    since: FromQ = None,
    until: ToQ = None,
    profile: ProfileQ = None,
    end_reason: EndReasonQ = None,
    had_failover: FailoverQ = None,
    q: TextQ = None,
    before: BeforeQ = None,
    limit: Annotated[int | None, Query(description=f"At most {MAX_LIMIT}; 50 unless set.")] = None,
) -> CallListOut:
    """Stored calls, newest first, each filter narrowing the list."""
    where = history_filter(since, until, profile, end_reason, had_failover, q, before)
    size = parse_limit(limit, 50, MAX_LIMIT)
    entries = await history_of(runtime).search(where, size + 1)
    page = entries[:size]
    more = len(entries) > size
    return CallListOut(
        calls=[CallSummaryOut.of(e) for e in page],
        next_before=cursor_of(page[-1]) if more and page else None,
    )


@router.get(
    "/api/calls/export",
    responses={
        **error_responses(422),
        200: {"content": {"application/json": {}, "text/csv": {}}},
    },
)
async def export_calls(
    _who: MonitorUserDep,
    runtime: RuntimeDep,
    fmt: Annotated[str, Query(alias="format", description="json (default) or csv")] = "json",
    since: FromQ = None,
    until: ToQ = None,
    profile: ProfileQ = None,
    end_reason: EndReasonQ = None,
    had_failover: FailoverQ = None,
    q: TextQ = None,
) -> StreamingResponse:
    """The matching calls with their transcripts, streamed: JSON (a list of
    calls as ``GET /api/calls/{id}`` gives them) or CSV (one row per turn)."""
    if fmt not in ("json", "csv"):
        raise InvalidRequest("format: json or csv", field="format")
    where = history_filter(since, until, profile, end_reason, had_failover, q)
    history = history_of(runtime)
    found = await history.count(where)
    if found > MAX_EXPORT:
        raise InvalidRequest(
            f"export: {found} calls match, at most {MAX_EXPORT} export at once; "
            "narrow them with from/to or other filters",
            code="too_many",
            field="from",
        )
    calls = history.with_turns(where, MAX_EXPORT)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    body = _json_lines(calls) if fmt == "json" else _csv_lines(calls)
    media = "application/json" if fmt == "json" else "text/csv; charset=utf-8"
    disposition = f'attachment; filename="voxfleet-calls-{stamp}.{fmt}"'
    return StreamingResponse(body, media_type=media, headers={"Content-Disposition": disposition})


async def _json_lines(calls: AsyncIterator[CallRecord]) -> AsyncIterator[str]:
    yield "["
    first = True
    async for call in calls:
        yield ("" if first else ",") + CallOut.of(call).model_dump_json()
        first = False
    yield "]"


async def _csv_lines(calls: AsyncIterator[CallRecord]) -> AsyncIterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    async for call in calls:
        started = "" if call.started_at is None else _iso(call.started_at)
        reason = "" if call.end_reason is None else call.end_reason.value
        for turn in call.turns:
            ms = turn.marks.as_ms_from_speech_end()
            writer.writerow(
                [call.id, call.profile, started, reason, turn.seq]
                + [turn.speaker.value, turn.text]
                + [ms.get(name.removesuffix("_ms"), "") for name in CSV_COLUMNS[7:]]
            )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


@router.get("/api/calls/{call_id}/timeline", responses=error_responses(404))
async def timeline(
    call_id: str, _who: MonitorUserDep, runtime: RuntimeDep, store: StoreDep
) -> TimelineOut:
    """Every turn with its marks and every event of the call, in time order;
    a live call shows what has been stored so far."""
    call = await stored_call(store, call_id)
    return timeline_of(call, await history_of(runtime).events(call_id))
