"""A real browser through the monitor's whole flow (issue 11): headless
Chromium signs in, a call started through the landing's API appears live (it
runs on another process's landing and agent, sharing Redis and PostgreSQL),
its transcript streams, the latency chart draws, the dashboard's "End call"
ends it (the caller is told `operator_ended`), /history lists it and its
inspector shows the call's turns; neither page hits a CSP or script error."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from playwright.async_api import ConsoleMessage, Page, async_playwright, expect

from tests.roles.test_monitor_signin import ADMIN, PASSWORD
from tests.support.calls import greeted_call, stored, turn
from tests.support.redis_server import RedisServer
from tests.support.server import app_server
from voxfleet.client import CallClient
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


def collect_problems(page: Page) -> list[str]:
    """Script errors and CSP refusals on ``page``, whichever document it shows."""
    problems: list[str] = []

    def console(m: ConsoleMessage) -> None:
        if m.type == "error" and is_problem(m.text):
            problems.append(f"{page.url}: {m.text}")

    page.on("console", console)
    page.on("pageerror", lambda e: problems.append(f"{page.url}: {e}"))
    return problems


async def test_sign_in_watch_end_a_call_then_find_it_in_history(
    tmp_path: Path, chromium: str, postgres_url: str
) -> None:
    with RedisServer() as redis:
        shared = {"redis_url": redis.url, "database_url": postgres_url, **SETTINGS}
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
            call: CallClient | None = None
            try:
                page = await browser.new_page(viewport={"width": 1100, "height": 900})
                problems = collect_problems(page)
                await page.goto(monitor + "/")
                await page.fill("input[name=name]", ADMIN)
                await page.fill("input[name=password]", PASSWORD)
                await page.click("#sign-in button[type=submit]")
                await page.wait_for_selector("#dashboard", state="visible", timeout=10_000)
                await page.wait_for_selector("#link.live", timeout=10_000)

                call = await greeted_call(landing)
                row = page.locator(f'tr[data-room="{call.call_id}"]')
                await row.wait_for(timeout=10_000)
                await row.locator("button", has_text="Transcript").click()
                await turn(call, 0.8, 1)
                said = page.locator(
                    '#captions li.final[data-key="user-1"]', has_text="utterance 0.8"
                )
                await said.wait_for(timeout=10_000)
                canvas = page.locator("#chart canvas")
                await canvas.wait_for(timeout=10_000)
                assert (await canvas.bounding_box() or {"width": 0})["width"] > 0

                # The admin ends the call from the dashboard; the caller is told why.
                await row.locator("button", has_text="End call").click()
                told = await call.wait_for(lambda m: m["type"] == "ended", timeout=10)
                assert told["reason"] == "operator_ended"
                await row.wait_for(state="detached", timeout=10_000)
                assert await page.locator("#action-error").text_content() == ""
                # The agents' turn sink writes a moment after the captions.
                record = await stored(call, turns=3)  # greeting, the caller, the reply
                assert (record["status"], record["end_reason"]) == ("ended", "operator_ended")

                await page.goto(monitor + "/history")
                listed = page.locator(f"#calls tbody tr[data-id='{call.call_id}']")
                await expect(listed).to_be_visible(timeout=10_000)
                await expect(listed).to_contain_text("operator_ended")
                await listed.click()
                await expect(page.locator("#inspected")).to_have_text(call.call_id)
                turns = page.locator("#timeline .turn-row")
                await expect(turns).to_have_count(3)
                await expect(turns.nth(1)).to_contain_text("utterance 0.8 seconds")
                # The reply's wait: from the end of the caller's speech to its first audio.
                await expect(page.locator("#timeline .wait")).to_have_count(1)
                assert problems == []
            finally:
                if call is not None:
                    await call.close()
                await browser.close()
