"""A real browser on the monitor's page: headless Chromium signs in, sees a
call's room appear live (the call runs on another process's landing and
agent, sharing Redis), sees the latency chart draw, and hits no CSP or
script error."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from playwright.async_api import async_playwright

from tests.roles.test_monitor_signin import ADMIN, PASSWORD
from tests.support.calls import greeted_call, turn
from tests.support.redis_server import RedisServer
from tests.support.server import app_server
from voxfleet.roles.runtime import Role

pytestmark = pytest.mark.e2e
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SETTINGS = {"monitor_admin_user": ADMIN, "monitor_admin_password": PASSWORD}


@pytest.fixture
def chromium() -> str:
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed (./vf test installs it with apt-get)")
    return CHROMIUM


def is_problem(text: str) -> bool:
    """A script error or a CSP refusal; not the 401 of asking who is signed in
    before signing in, nor the missing favicon."""
    return not text.startswith("Failed to load resource")


async def test_sign_in_see_a_live_room_and_the_chart(tmp_path: Path, chromium: str) -> None:
    with RedisServer() as redis:
        shared = {"redis_url": redis.url, **SETTINGS}
        async with (
            app_server(tmp_path / "a", frozenset({Role.LANDING, Role.AGENT}), **shared) as (
                landing,
                _a,
            ),
            app_server(tmp_path / "m", frozenset({Role.MONITOR}), **shared) as (monitor, _m),
            async_playwright() as pw,
        ):
            browser = await pw.chromium.launch(
                executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu"]
            )
            try:
                page = await browser.new_page(viewport={"width": 1100, "height": 900})
                problems: list[str] = []
                page.on(
                    "console",
                    lambda m: (
                        problems.append(m.text)
                        if m.type == "error" and is_problem(m.text)
                        else None
                    ),
                )
                page.on("pageerror", lambda e: problems.append(str(e)))
                await page.goto(monitor + "/")
                await page.fill("input[name=name]", ADMIN)
                await page.fill("input[name=password]", PASSWORD)
                await page.click("#sign-in button[type=submit]")
                await page.wait_for_selector("#dashboard", state="visible", timeout=10_000)
                await page.wait_for_selector("#link.live", timeout=10_000)

                call = await greeted_call(landing)
                row = page.locator(f'tr[data-room="{call.call_id}"]')
                await row.wait_for(timeout=10_000)
                assert await row.locator("button", has_text="End call").count() == 1
                await row.locator("button", has_text="Transcript").click()
                await turn(call, 0.8, 1)
                said = page.locator(
                    '#captions li.final[data-key="user-1"]', has_text="utterance 0.8"
                )
                await said.wait_for(timeout=10_000)
                canvas = page.locator("#chart canvas")
                await canvas.wait_for(timeout=10_000)
                assert (await canvas.bounding_box() or {"width": 0})["width"] > 0
                await call.end()
                await row.wait_for(state="detached", timeout=10_000)
                assert problems == []
            finally:
                await browser.close()
