"""The page on LiveKit, in a real browser: headless Chromium presses Talk on a
`voxfleet up` whose transport is LiveKit. No LiveKit server runs here, so a
stand-in at the LiveKit URL only records the signalling request: the page
loaded the bundled livekit-client under the server's CSP and asked to join its
call's room with its call's token; the refused join ends in a clear notice."""

from __future__ import annotations

import shutil
import threading
import time
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
            # The page puts its token in the query; an agent's SDK in a header.
            header = ws.request.headers.get("authorization", "")
            asked.append(ws.request.path + ("#" + header.removeprefix("Bearer ") if header else ""))
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
            deadline = time.monotonic() + 10  # the agent that took the call joins too
            while not any("#" in a for a in asked) and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            browser.close()
    assert errors == []
    verify = TokenVerifier(KEY, SECRET).verify
    pages = [
        q["access_token"][0]
        for q in (parse_qs(urlsplit(a).query) for a in asked)
        if q.get("access_token")
    ]
    assert pages, f"the page never reached the LiveKit URL: {asked}"
    claims = verify(pages[0])
    assert claims.identity == "caller" and claims.video is not None
    assert claims.video.room.startswith("c_") and claims.video.can_publish_sources == ["microphone"]
    # The agent that took the call tried to join the same room, with its own token.
    agents = [verify(a.partition("#")[2]) for a in asked if "#" in a]
    assert any(
        c.identity.startswith("agent-")
        and c.video is not None
        and c.video.room == claims.video.room
        for c in agents
    ), asked
    assert "Could not join the call's audio room" in notice
