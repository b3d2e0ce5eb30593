"""The page on LiveKit, in a real browser: headless Chromium presses Talk on a
`voxfleet up` whose transport is LiveKit. No LiveKit server runs here, so a
stand-in at the LiveKit URL only records the signalling request: the page
loaded the bundled livekit-client under the server's CSP and asked to join its
call's room with its call's token; the refused join ends in a clear notice."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from livekit.api import TokenVerifier
from playwright.sync_api import sync_playwright
from websockets.sync.server import ServerConnection, serve

from tests.support.livekit import KEY, SECRET
from tests.support.server import free_port, up_process

pytestmark = pytest.mark.e2e
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def signalling() -> Iterator[tuple[str, list[str]]]:
    """A socket server at the LiveKit URL that records each request and closes."""
    asked: list[str] = []

    def handler(ws: ServerConnection) -> None:
        if ws.request is not None:
            asked.append(ws.request.path)
        ws.close(1011, "no LiveKit here")

    port = free_port()
    with serve(handler, "127.0.0.1", port) as server:
        thread = threading.Thread(target=server.serve_forever, name="livekit-stand-in")
        thread.start()
        try:
            yield f"ws://127.0.0.1:{port}", asked
        finally:
            server.shutdown()
            thread.join(10)


def test_the_page_joins_its_calls_room_with_its_token(
    signalling: tuple[str, list[str]], tmp_path: Path
) -> None:
    url, asked = signalling
    env = {
        "VOXFLEET_PROVIDERS": "scripted",
        "VOXFLEET_TRANSPORT": "livekit",
        "VOXFLEET_LIVEKIT_URL": url,
        "VOXFLEET_LIVEKIT_API_KEY": KEY,
        "VOXFLEET_LIVEKIT_API_SECRET": SECRET,
    }
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed (./vf test installs it with apt-get)")
    with up_process(tmp_path, **env) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
            ],
        )
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on(
                "console",
                lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None,
            )
            page.goto(base)
            page.locator("#talk").click()
            page.wait_for_selector("body[data-conn-state=error]", timeout=30_000)
            notice = page.locator("#notice").inner_text()
        finally:
            browser.close()
    assert errors == []
    assert asked, "the page never reached the LiveKit URL"
    query = parse_qs(urlsplit(asked[0]).query)
    claims = TokenVerifier(KEY, SECRET).verify(query["access_token"][0])
    assert claims.identity == "caller" and claims.video is not None
    assert claims.video.room.startswith("c_") and claims.video.can_publish_sources == ["microphone"]
    assert "Could not join the call's audio room" in notice
