"""A real browser: headless Chromium with a fake microphone fed from a WAV of a
spoken question presses Talk on the landing page of a real `voxfleet up`, and
sees captions of both sides."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

from tests.audio import silence
from tests.support.server import up_process
from tests.support.speech import piper_speech, write_wav

pytestmark = pytest.mark.e2e
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with up_process(tmp_path_factory.mktemp("up-e2e")) as base:
        yield base


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed (./vf test installs it with apt-get)")
    # Chromium loops the file: quiet while the greeting plays, then the question.
    speech = silence(7.0) + piper_speech("What is the capital of France?") + silence(8.0)
    wav = write_wav(tmp_path / "mic.wav", speech)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={wav}",
                "--autoplay-policy=no-user-gesture-required",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 800})
            yield page
        finally:
            browser.close()


def test_talk_shows_captions_of_both_sides(server: str, page: Page, tmp_path: Path) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    # The page runs under the server's Content-Security-Policy: Chromium reports
    # anything the policy blocks (a script, a worklet, the socket) on the console.
    page.on(
        "console",
        lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None,
    )
    response = page.goto(server)
    assert response is not None and "content-security-policy" in response.headers
    talk = page.locator("#talk")
    assert talk.inner_text().strip() == "Talk"
    talk.click()
    page.wait_for_selector("body[data-conn-state=connected]", timeout=30_000)
    greeting = page.wait_for_selector(
        "li.caption[data-role=agent][data-final=true]", timeout=30_000
    )
    assert "voxfleet" in greeting.inner_text().lower()
    user = page.wait_for_selector("li.caption[data-role=user][data-final=true]", timeout=45_000)
    heard = user.inner_text().lower()
    assert "capital" in heard and "france" in heard
    page.wait_for_selector("li.caption[data-role=agent][data-final=true] >> nth=1", timeout=60_000)
    assert page.get_attribute("body", "data-agent-state") in {"listening", "speaking", "thinking"}
    page.screenshot(path=str(tmp_path / "call.png"))
    talk.click()  # End
    page.wait_for_selector("body[data-conn-state=ended]", timeout=15_000)
    assert talk.inner_text().strip() == "Talk"
    assert errors == []
