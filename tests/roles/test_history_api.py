"""The monitor's call history over real HTTP against the real app and store:
signed-in users list, filter, page, export and inspect calls; bad parameters
get a 422 naming them; anonymous callers get 401."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import text

from tests.roles.test_monitor_signin import MONITOR_ONLY, SETTINGS, signed_in
from tests.support.server import app_server
from voxfleet.domain.calls import EndReason, LatencyMarks, Speaker, Turn
from voxfleet.domain.events import CallEvent, EventKind
from voxfleet.roles.history import MAX_EXPORT
from voxfleet.roles.runtime import Runtime
from voxfleet.store import session_factory
from voxfleet.store.history import CallHistory

pytestmark = pytest.mark.integration

T0 = 1_717_000_000.0  # 2024-05-29T16:26:40Z
A, B, C = "c_AAAAAAAAAAAAAAAA", "c_BBBBBBBBBBBBBBBB", "c_CCCCCCCCCCCCCCCC"


async def seed(runtime: Runtime) -> None:
    assert runtime.store is not None and runtime.engine is not None
    store, history = runtime.store, CallHistory(session_factory(runtime.engine))
    for call_id, at, profile in (
        (A, T0, "default"),
        (B, T0 + 60, "sales"),
        (C, T0 + 120, "default"),
    ):
        await store.create_call(call_id, profile, created_at=at)
        await store.mark_active(call_id, at + 1)
    marks = LatencyMarks(speech_end=T0 + 3, stt_done=T0 + 3.2, first_audio_sent=T0 + 3.8)
    await store.add_turn(Turn(A, 0, Speaker.USER, "I want a Refund", T0 + 2, T0 + 3))
    await store.add_turn(
        Turn(A, 1, Speaker.AGENT, "Sure, one moment", T0 + 3.8, T0 + 5, True, marks)
    )
    await store.add_turn(Turn(B, 0, Speaker.USER, "new phone, please", T0 + 62, T0 + 63))
    await store.end_call(A, EndReason.CALLER_ENDED, T0 + 9)
    await store.end_call(B, EndReason.AGENT_ENDED, T0 + 70)
    await history.add_event(CallEvent(A, T0 + 4.5, EventKind.INTERRUPTION, {"seq": 1}))
    await history.add_event(CallEvent(A, T0 + 2.5, EventKind.FAILOVER, {"agent": "agent-2"}))


@pytest_asyncio.fixture
async def http(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        app_server(tmp_path, MONITOR_ONLY, **SETTINGS) as (base, runtime),
        httpx.AsyncClient(base_url=base) as client,
    ):
        await seed(runtime)
        await signed_in(client)
        yield client


async def listed(http: httpx.AsyncClient, **params: str) -> list[str]:
    r = await http.get("/api/calls", params=params)
    assert r.status_code == 200, r.text
    return [call["id"] for call in r.json()["calls"]]


async def test_each_filter_narrows_the_list(http: httpx.AsyncClient) -> None:
    assert await listed(http) == [C, B, A]
    assert await listed(http, **{"from": "2024-05-29T16:27:00Z"}) == [C, B]
    assert await listed(http, to="2024-05-29T16:28:00+00:00") == [B, A]
    assert await listed(http, profile="sales") == [B]
    assert await listed(http, end_reason="caller_ended") == [A]
    assert await listed(http, had_failover="true") == [A]
    assert await listed(http, had_failover="false") == [C, B]
    assert await listed(http, q="refund") == [A]
    first = (await http.get("/api/calls", params={"limit": "2"})).json()
    assert [c["id"] for c in first["calls"]] == [C, B]
    assert await listed(http, before=first["next_before"]) == [A]
    assert (await http.get("/api/calls", params={"limit": "3"})).json()["next_before"] is None
    assert first["calls"][1]["had_failover"] is False


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "yesterday"}, "from"),
        ({"to": "2024-13-01"}, "to"),
        ({"from": "2024-05-30T00:00:00Z", "to": "2024-05-29T00:00:00Z"}, "to"),
        ({"end_reason": "bored"}, "end_reason"),
        ({"had_failover": "maybe"}, "had_failover"),
        ({"limit": "201"}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"before": "nonsense"}, "before"),
    ],
)
async def test_bad_parameters_get_422_naming_them(
    http: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    r = await http.get("/api/calls", params=params)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["field"] == field and error["message"].startswith(f"{field}:")
    r = await http.get("/api/calls/export", params={"format": "xml"})
    assert (r.status_code, r.json()["error"]["field"]) == (422, "format")


async def test_anonymous_callers_get_401(tmp_path: Path) -> None:
    async with (
        app_server(tmp_path, MONITOR_ONLY, **SETTINGS) as (base, _runtime),
        httpx.AsyncClient(base_url=base) as http,
    ):
        for path in ("/api/calls", "/api/calls/export", f"/api/calls/{A}/timeline"):
            assert (await http.get(path)).status_code == 401, path


async def test_json_export_parses_back_to_what_was_stored(http: httpx.AsyncClient) -> None:
    r = await http.get("/api/calls/export", params={"format": "json", "profile": "default"})
    assert r.status_code == 200
    assert 'filename="voxfleet-calls-' in r.headers["content-disposition"]
    calls = r.json()
    assert [c["id"] for c in calls] == [C, A]
    assert [(t["seq"], t["speaker"], t["text"]) for t in calls[1]["turns"]] == [
        (0, "user", "I want a Refund"),
        (1, "agent", "Sure, one moment"),
    ]
    assert calls[1]["turns"][1]["latency_ms"] == {"stt_done": 200.0, "first_audio_sent": 800.0}


async def test_csv_export_has_one_row_per_turn(http: httpx.AsyncClient) -> None:
    r = await http.get("/api/calls/export", params={"format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"].endswith('.csv"')
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(row["call_id"], row["seq"], row["speaker"], row["text"]) for row in rows] == [
        (B, "0", "user", "new phone, please"),
        (A, "0", "user", "I want a Refund"),
        (A, "1", "agent", "Sure, one moment"),
    ]
    reply = rows[2]
    assert (reply["profile"], reply["end_reason"]) == ("default", "caller_ended")
    assert (reply["stt_done_ms"], reply["first_audio_sent_ms"], reply["tts_first_audio_ms"]) == (
        "200.0",
        "800.0",
        "",
    )
    assert reply["started_at"] == "2024-05-29T16:26:41+00:00"


async def test_the_timeline_orders_marks_and_events(http: httpx.AsyncClient) -> None:
    r = await http.get(f"/api/calls/{A}/timeline")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["call"]["had_failover"] is True
    kinds = [(item["kind"], item["seq"]) for item in body["items"]]
    assert kinds == [
        ("turn_start", 0),
        ("failover", None),
        ("turn_end", 0),
        ("speech_end", 1),
        ("stt_done", 1),
        ("turn_start", 1),
        ("first_audio_sent", 1),
        ("interruption", 1),
        ("turn_end", 1),
    ]
    assert body["turns"][1]["interrupted"] is True
    assert set(body["turns"][1]["marks"]) == {"speech_end", "stt_done", "first_audio_sent"}
    missing = await http.get("/api/calls/c_ZZZZZZZZZZZZZZZZ/timeline")
    assert missing.status_code == 404


async def test_the_page_and_openapi_are_served(http: httpx.AsyncClient) -> None:
    page = await http.get("/history")
    assert page.status_code == 200 and "/monitor-static/history.js" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert (await http.get("/monitor-static/history.js")).status_code == 200
    paths = (await http.get("/openapi.json")).json()["paths"]
    listing = paths["/api/calls"]["get"]
    assert {p["name"] for p in listing["parameters"]} >= {"from", "to", "q", "had_failover"}
    assert "/api/calls/{call_id}/timeline" in paths and "/api/calls/export" in paths


async def test_an_export_of_too_many_calls_is_refused_with_the_count(tmp_path: Path) -> None:
    async with (
        app_server(tmp_path, MONITOR_ONLY, **SETTINGS) as (base, runtime),
        httpx.AsyncClient(base_url=base) as http,
    ):
        assert runtime.engine is not None
        async with runtime.engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO calls (id, profile, status, created_at) "
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                    "WHERE i < :count) SELECT 'c_bulk' || i, 'bulk', 'ended', CURRENT_TIMESTAMP "
                    "FROM n"
                ),
                {"count": MAX_EXPORT + 1},
            )
        await signed_in(http)
        r = await http.get("/api/calls/export", params={"profile": "bulk"})
        assert r.status_code == 422
        error = r.json()["error"]
        assert error["code"] == "too_many" and f"{MAX_EXPORT + 1} calls match" in error["message"]
        listing = await http.get("/api/calls", params={"profile": "bulk", "limit": "200"})
        assert len(listing.json()["calls"]) == 200  # listing pages through them still
