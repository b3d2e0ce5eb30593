"""scripts/livekit-smoke offline: its options, its WAV reading and its reading
of the landing's answer, and a landing that does not answer. Joining a room
needs a LiveKit server, and none runs on this machine (none is installable
here): the script itself is that test, run against a real deployment."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import sys
import threading
import types
import wave
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

pytestmark = pytest.mark.unit
SCRIPT = Path(__file__).parents[3] / "scripts" / "livekit-smoke"


@pytest.fixture(scope="module")
def smoke() -> Iterator[types.ModuleType]:
    loader = importlib.machinery.SourceFileLoader("livekit_smoke", str(SCRIPT))
    spec = importlib.util.spec_from_loader("livekit_smoke", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    try:
        loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def write_wav(path: Path, samples: np.ndarray, rate: int = 16000, channels: int = 1) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(samples.dtype.itemsize)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return path


def test_the_script_is_executable() -> None:
    assert SCRIPT.stat().st_mode & 0o111
    assert SCRIPT.read_text().startswith("#!/usr/bin/env python3\n")


def test_options_from_flags_and_environment(smoke: types.ModuleType) -> None:
    env = {
        "VOXFLEET_LANDING_URL": "https://talk.example.com/",
        "LIVEKIT_API_KEY": "key",
        "LIVEKIT_API_SECRET": "secret",
    }
    options = smoke.parse_options(["--wav", "q.wav", "--timeout", "5"], env)
    assert options.landing == "https://talk.example.com"
    assert (options.api_key, options.api_secret, options.livekit_url) == ("key", "secret", None)
    assert options.wav == Path("q.wav") and options.timeout == 5.0
    flags = ["--landing", "http://h:8080", "--wav", "q.wav", "--livekit-url", "wss://lk.example"]
    assert smoke.parse_options(flags, {}).livekit_url == "wss://lk.example"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--wav", "q.wav"], "--landing (or VOXFLEET_LANDING_URL) is required"),
        (["--landing", "talk.example.com", "--wav", "q.wav"], "is not an http(s) URL"),
        (["--landing", "http://h"], "--wav is required"),
        (["--landing", "http://h", "--wav", "q", "--api-key", "k"], "go together"),
        (["--landing", "http://h", "--wav", "q", "--livekit-url", "lk.example"], "ws(s) URL"),
        (["--landing", "http://h", "--wav", "q", "--timeout", "0"], "must be positive"),
    ],
)
def test_bad_options_exit_2_naming_the_flag(
    smoke: types.ModuleType, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        smoke.parse_options(argv, {})
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_a_stereo_wav_is_read_as_mono(smoke: types.ModuleType, tmp_path: Path) -> None:
    left = np.arange(100, dtype="<i2")
    right = -np.arange(100, dtype="<i2") * 3
    stereo = np.stack([left, right], axis=1).reshape(-1)
    pcm, rate = smoke.read_wav(write_wav(tmp_path / "s.wav", stereo, 48000, channels=2))
    assert rate == 48000
    expected = (left.astype(np.int32) + right.astype(np.int32)) // 2
    assert pcm == expected.astype("<i2").tobytes()


def test_wavs_that_cannot_be_said_are_refused(smoke: types.ModuleType, tmp_path: Path) -> None:
    eight_bit = write_wav(tmp_path / "8.wav", np.zeros(10, dtype=np.uint8))
    with pytest.raises(smoke.SmokeError, match="8-bit samples; 16-bit PCM needed"):
        smoke.read_wav(eight_bit)
    with pytest.raises(smoke.SmokeError, match="not a readable WAV"):
        smoke.read_wav(tmp_path / "missing.wav")
    (tmp_path / "text.wav").write_text("hello")
    with pytest.raises(smoke.SmokeError, match="not a readable WAV"):
        smoke.read_wav(tmp_path / "text.wav")
    with pytest.raises(smoke.SmokeError, match="no audio"):
        smoke.read_wav(write_wav(tmp_path / "empty.wav", np.zeros(0, dtype="<i2")))


def test_the_landings_answer_gives_the_room(smoke: types.ModuleType) -> None:
    body = {"id": "c1", "livekit": {"url": "wss://lk", "room": "c1", "token": "t"}}
    assert smoke.join_of(body, None) == smoke.Join("c1", "wss://lk", "c1", "t")
    assert smoke.join_of(body, "wss://other").url == "wss://other"
    with pytest.raises(smoke.SmokeError, match="VOXFLEET_TRANSPORT=livekit"):
        smoke.join_of({"id": "c1", "media_url": "ws://x"}, None)
    with pytest.raises(smoke.SmokeError, match=r"livekit\.token missing"):
        smoke.join_of({"livekit": {"url": "wss://lk", "room": "c1"}}, None)
    with pytest.raises(smoke.SmokeError, match="JSON object"):
        smoke.join_of([], None)


def test_a_landing_that_does_not_answer_exits_2_with_a_json_verdict(
    smoke: types.ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wav = write_wav(tmp_path / "q.wav", np.ones(1600, dtype="<i2"))
    code = smoke.main(["--landing", "http://127.0.0.1:9", "--wav", str(wav)], {})
    assert code == 2
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["ok"] is False and "127.0.0.1:9" in verdict["error"]


class _Landing(BaseHTTPRequestHandler):
    """A landing stand-in: answers POST /api/calls with ``answer``."""

    answer: ClassVar[dict[str, object]] = {}
    url: ClassVar[str] = ""

    def do_POST(self) -> None:
        body = json.dumps(self.answer).encode()
        self.send_response(201 if self.path == "/api/calls" else 404)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def landing() -> Iterator[type[_Landing]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Landing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Landing.url = f"http://127.0.0.1:{server.server_port}"
    try:
        yield _Landing
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"id": "c1", "media_url": "ws://x"}, "VOXFLEET_TRANSPORT=livekit"),
        # A LiveKit URL nobody serves: the SDK's refusal, named.
        (
            {"id": "c1", "livekit": {"url": "ws://127.0.0.1:9", "room": "c1", "token": "t"}},
            "ws://127.0.0.1:9: room c1 not joined",
        ),
    ],
)
def test_a_landing_without_a_reachable_livekit_room_exits_2(
    smoke: types.ModuleType,
    landing: type[_Landing],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    answer: dict[str, object],
    message: str,
) -> None:
    landing.answer = answer
    wav = write_wav(tmp_path / "q.wav", np.ones(1600, dtype="<i2"))
    code = smoke.main(["--landing", landing.url, "--wav", str(wav)], {})
    verdict = json.loads(capsys.readouterr().out)
    assert code == 2 and verdict["ok"] is False
    assert message in verdict["error"]
