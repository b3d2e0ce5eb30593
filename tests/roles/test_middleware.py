"""What every request and socket passes before a route, over real HTTP and
WebSocket: the body cap (declared or streamed), the security headers and a CSP
the page can live with, the Origin rule of the media socket (refused at the
handshake, before the edge sees the socket), and API docs off by default."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.support.server import ADMIN_KEY, app_server

pytestmark = pytest.mark.integration

JSON = {"Content-Type": "application/json"}


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def chunks(total: int, size: int = 1000) -> AsyncIterator[bytes]:
    """A body of ``total`` bytes with no Content-Length (chunked): a JSON object
    padded with spaces."""
    sent = 0
    yield b'{"profile": "default"'
    sent += 21
    while sent < total - 1:
        piece = min(size, total - 1 - sent)
        yield b" " * piece
        sent += piece
    yield b"}"


async def refused(http: httpx.AsyncClient, reason: str) -> float:
    text = (await http.get("/metrics")).text
    return metric(text, f'voxfleet_http_refused_total{{reason="{reason}"}}')


async def test_bodies_over_the_cap_get_413_declared_or_streamed(tmp_path: Path) -> None:
    async with (
        app_server(tmp_path, max_body_bytes=2048) as (base, _rt),
        httpx.AsyncClient(base_url=base) as http,
    ):
        before = await refused(http, "body_too_large")
        declared = await http.post("/api/calls", content=b" " * 4096 + b"{}", headers=JSON)
        assert declared.status_code == 413
        assert declared.json()["error"]["code"] == "body_too_large"
        assert declared.headers["x-content-type-options"] == "nosniff"
        streamed = await http.post("/api/calls", content=chunks(50_000), headers=JSON)
        assert "content-length" not in streamed.request.headers
        assert streamed.status_code == 413
        assert streamed.json()["error"]["code"] == "body_too_large"
        small = await http.post("/api/calls", content=chunks(1500), headers=JSON)
        assert small.status_code == 201
        assert await refused(http, "body_too_large") - before == 2


async def test_every_response_carries_the_security_headers(tmp_path: Path) -> None:
    async with app_server(tmp_path) as (base, _rt), httpx.AsyncClient(base_url=base) as http:
        host = base.removeprefix("http://")
        for path in ("/", "/static/app.js", "/api/profiles", "/livez", "/no-such-page"):
            r = await http.get(path)
            assert r.headers["x-content-type-options"] == "nosniff", path
            assert r.headers["referrer-policy"] == "no-referrer", path
            assert r.headers["permissions-policy"].startswith("microphone=(self)"), path
            csp = r.headers["content-security-policy"]
            assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp, path
            assert f"connect-src 'self' ws://{host} wss://{host}" in csp, path
            assert "img-src 'self' data:" in csp and "script-src 'self';" in csp, path


async def test_the_page_needs_nothing_the_csp_forbids(tmp_path: Path) -> None:
    """The CSP allows no inline script, inline style, eval or foreign origin:
    the page and its scripts use none (the browser test runs the page for real)."""
    async with app_server(tmp_path) as (base, _rt), httpx.AsyncClient(base_url=base) as http:
        page = (await http.get("/")).text
        scripts = {
            name: (await http.get(f"/static/{name}")).text
            for name in ("app.js", "capture-worklet.js", "playback-worklet.js")
        }
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", page) == []
    assert re.findall(r"\sstyle=|\son[a-z]+=", page) == []
    for url in re.findall(r'(?:src|href)="([^"]+)"', page):
        assert url.startswith(("/", "data:")), url
    for name, code in scripts.items():
        assert not re.search(r"\beval\(|new Function\(|setAttribute\(['\"]style", code), name
        assert not re.search(r"""['"]https?://""", code), name


async def test_csp_names_the_public_socket_origin(tmp_path: Path) -> None:
    async with (
        app_server(tmp_path, public_url="https://talk.example.com") as (base, _rt),
        httpx.AsyncClient(base_url=base) as http,
    ):
        csp = (await http.get("/")).headers["content-security-policy"]
        assert "connect-src 'self' wss://talk.example.com ws://" in csp


async def handshake(url: str, origin: str | None) -> int:
    """101 if the socket opened, else the HTTP status of the refusal."""
    try:
        async with connect(url, origin=origin) as _ws:  # type: ignore[arg-type]
            return 101
    except InvalidStatus as e:
        return e.response.status_code


async def new_call(base: str) -> dict[str, Any]:
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{base}/api/calls", json={})
        r.raise_for_status()
        data: dict[str, Any] = r.json()
        return data


async def call_status(base: str, call_id: str) -> str:
    async with httpx.AsyncClient() as http:
        r = await http.get(
            f"{base}/api/calls/{call_id}", headers={"Authorization": f"Bearer {ADMIN_KEY}"}
        )
        status: str = r.json()["status"]
        return status


async def test_sockets_from_other_origins_are_refused_at_the_handshake(tmp_path: Path) -> None:
    async with app_server(tmp_path) as (base, _rt), httpx.AsyncClient(base_url=base) as http:
        before = await refused(http, "origin")
        call = await new_call(base)
        url = call["media_url"]
        for origin in ("http://evil.example", "null", "http://127.0.0.1:1", "https://127.0.0.1"):
            assert await handshake(url, origin) == 403, origin
        assert await call_status(base, call["id"]) == "created"  # the edge never saw them
        assert await refused(http, "origin") - before == 4
        assert await handshake(url, base) == 101  # same origin: the page's own socket
        other = await new_call(base)
        assert await handshake(other["media_url"], None) == 101  # no Origin: not a browser


async def opens(base: str, origin: str) -> bool:
    """Whether a new call's socket opens from ``origin`` (media_url pointed at
    this test server even when it names a public URL)."""
    path = (await new_call(base))["media_url"].split("/ws/", 1)[1]
    return await handshake(f"{base.replace('http', 'ws')}/ws/{path}", origin) == 101


async def test_public_url_and_allowlist_decide_the_origins(tmp_path: Path) -> None:
    async with app_server(tmp_path, public_url="https://talk.example.com") as (base, _rt):
        assert await opens(base, "https://talk.example.com")
        assert not await opens(base, base)  # same-origin no longer: the public URL decides
    allowed = "https://a.example, https://B.example:443"
    async with app_server(tmp_path / "list", allowed_origins=allowed) as (base, _rt):
        assert await opens(base, "https://b.example")
        assert not await opens(base, "https://c.example")
        assert not await opens(base, base)
    async with app_server(tmp_path / "any", allowed_origins="*") as (base, _rt):
        assert await opens(base, "https://c.example")


async def test_api_docs_are_off_unless_enabled(tmp_path: Path) -> None:
    async with app_server(tmp_path) as (base, _rt), httpx.AsyncClient(base_url=base) as http:
        assert (await http.get("/docs")).status_code == 404
        assert (await http.get("/redoc")).status_code == 404
        assert (await http.get("/openapi.json")).status_code == 200
    async with (
        app_server(tmp_path / "docs", api_docs=True) as (base, _rt),
        httpx.AsyncClient(base_url=base) as http,
    ):
        docs = await http.get("/docs")
        assert docs.status_code == 200 and "content-security-policy" not in docs.headers
        assert docs.headers["x-content-type-options"] == "nosniff"
