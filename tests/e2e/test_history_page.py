"""A real browser on the monitor's call history: headless Chromium, signed in
through the API in its own context (the page has no sign-in form), opens
/history on the real app, sees a stored call, opens its timeline and sees the
turn rows and the failover marker; signed out, the page links to sign-in."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from playwright.async_api import async_playwright, expect

from tests.roles.test_history_api import A, seed
from tests.roles.test_monitor_signin import ADMIN, MONITOR_ONLY, PASSWORD, SETTINGS
from tests.support.server import app_server

pytestmark = pytest.mark.e2e
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
HAVE_CHROMIUM = Path(CHROMIUM).exists()


async def test_history_lists_a_call_and_opens_its_timeline(tmp_path: Path) -> None:
    if not HAVE_CHROMIUM:
        pytest.fail("chromium is not installed (./vf test installs it with apt-get)")
    async with (
        app_server(tmp_path, MONITOR_ONLY, **SETTINGS) as (base, runtime),
        async_playwright() as pw,
    ):
        await seed(runtime)
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            context = await browser.new_context(base_url=base)
            page = await context.new_page()
            errors: list[str] = []  # script errors and what the CSP refused
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on(
                "console",
                lambda m: (
                    errors.append(m.text)
                    if m.type == "error" and not m.text.startswith("Failed to load resource")
                    else None
                ),
            )
            failed: list[str] = []
            page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)

            await page.goto("/history")
            await expect(page.locator("#anonymous a[href='/']")).to_be_visible()

            signed = await context.request.post(
                "/api/session", data={"name": ADMIN, "password": PASSWORD}
            )
            assert signed.ok
            await page.goto("/history")
            row = page.locator(f"#calls tbody tr[data-id='{A}']")
            await expect(row).to_be_visible()
            await expect(page.locator("#calls tbody tr")).to_have_count(3)

            await page.fill("input[name=q]", "refund")
            await page.click("#filters button[type=submit]")
            await expect(page.locator("#calls tbody tr")).to_have_count(1)

            await row.click()
            await expect(page.locator("#inspected")).to_have_text(A)
            await expect(page.locator("#timeline .turn-row")).to_have_count(2)
            await expect(page.locator("#timeline .wait")).to_have_count(1)
            await expect(page.locator("#timeline .marker.failover")).to_have_count(1)
            await expect(page.locator("#events li.interruption")).to_have_count(1)
            assert errors == []
            # Only the anonymous visit's session check (and the favicon) failed.
            assert {u.removeprefix(base) for u in failed} <= {"/api/session", "/favicon.ico"}
        finally:
            await browser.close()
