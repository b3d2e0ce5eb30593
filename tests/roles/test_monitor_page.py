"""The monitor's page and its latency API, over real HTTP against the real app:
the page and its vendored chart library are served where the monitor routes
are (under the strict CSP), and recent replies' per-stage latency reads back."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.calls import greeted_call, stored, turn
from tests.support.server import ADMIN_KEY, app_server
from voxfleet.roles.app import create_app
from voxfleet.roles.runtime import Role, Runtime
from voxfleet.settings import Settings

pytestmark = pytest.mark.integration
KEY = {"Authorization": f"Bearer {ADMIN_KEY}"}


async def test_the_monitor_serves_its_page_and_chart_library(tmp_path: Path) -> None:
    async with (
        app_server(tmp_path, frozenset({Role.MONITOR})) as (base, _runtime),
        httpx.AsyncClient(base_url=base) as http,
    ):
        page = await http.get("/")
        assert page.status_code == 200 and "voxfleet monitor" in page.text
        csp = page.headers["content-security-policy"]
        assert "script-src 'self';" in csp and "frame-ancestors 'none'" in csp
        for path in ("/monitor/app.js", "/monitor/vendor/uplot.esm.js", "/monitor/style.css"):
            assert (await http.get(path)).status_code == 200, path
        bad = await http.get("/api/latency?minutes=0", headers=KEY)
        error = bad.json()["error"]
        assert (bad.status_code, error["field"]) == (422, "minutes")
        assert error["message"] == "minutes: expected a whole number from 1 to 60"
        assert (await http.get("/api/latency")).status_code == 401


async def test_recent_replies_latency_per_stage(tmp_path: Path) -> None:
    async with (
        app_server(tmp_path) as (base, _runtime),
        httpx.AsyncClient(base_url=base, headers=KEY) as http,
    ):
        call = await greeted_call(base)
        await turn(call, 0.8, 1)
        await call.end()
        await stored(call, turns=3)  # the greeting, the caller's turn, the reply
        replies = (await http.get("/api/latency")).json()["replies"]
        assert len(replies) == 1
        reply = replies[0]
        assert reply["total_ms"] > 0 and reply["stt_ms"] is not None
        assert reply["total_ms"] >= reply["stt_ms"]


async def test_voxfleet_ups_admin_app_serves_the_page_and_the_public_one_does_not(
    tmp_path: Path,
) -> None:
    """As serve.py builds them for `voxfleet up`: one runtime, the public app
    without the monitor, the admin app with only it."""
    settings = Settings(data_dir=tmp_path, providers="scripted", _env_file=None)  # type: ignore[call-arg]
    runtime = Runtime(settings, frozenset(Role))
    admin = create_app(runtime, frozenset({Role.MONITOR}), lifespan=False)
    public = create_app(runtime, frozenset({Role.LANDING, Role.AGENT}))
    for app, monitor in ((admin, True), (public, False)):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            page = (await http.get("/")).text
            assert ("voxfleet monitor" in page) is monitor
            assert (await http.get("/monitor/app.js")).status_code == (200 if monitor else 404)
    await runtime.backends.close()
    if runtime.engine is not None:
        await runtime.engine.dispose()
