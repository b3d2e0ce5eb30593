"""Hostile bodies on POST /api/calls, over real HTTP: each gets a documented 4xx in
the one error shape (never a 500), and no error echoes more than a short piece
of what was sent."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.support.server import app_server

pytestmark = pytest.mark.integration

JSON = {"Content-Type": "application/json"}


def error(r: httpx.Response) -> dict[str, str]:
    body: dict[str, str] = r.json()["error"]
    return body


async def test_numbers_and_nesting_the_parser_refuses_are_400(tmp_path: Path) -> None:
    async with app_server(tmp_path) as (base, _runtime), httpx.AsyncClient(base_url=base) as http:
        huge = await http.post(
            "/api/calls", content=b'{"profile": ' + b"9" * 4301 + b"}", headers=JSON
        )
        assert huge.status_code == 400 and error(huge)["code"] == "invalid_json"
        deep = await http.post("/api/calls", content=b"[" * 2000 + b"]" * 2000, headers=JSON)
        assert deep.status_code == 400 and error(deep)["code"] == "invalid_json"
        assert "nested too deeply" in error(deep)["message"]
        deep_objects = b'{"a":' * 2000 + b"1" + b"}" * 2000
        r = await http.post("/api/calls", content=deep_objects, headers=JSON)
        assert r.status_code == 400
        bad_utf8 = await http.post("/api/calls", content=b'{"profile": "\xff"}', headers=JSON)
        assert bad_utf8.status_code == 400


async def test_long_values_are_not_echoed_whole(tmp_path: Path) -> None:
    async with app_server(tmp_path) as (base, _runtime), httpx.AsyncClient(base_url=base) as http:
        name = "p" * 12_000
        unknown = await http.post("/api/calls", json={"profile": name})
        assert unknown.status_code == 422 and error(unknown)["code"] == "unknown_profile"
        assert error(unknown)["field"] == "profile"
        assert len(error(unknown)["message"]) < 200
        key = "k" * 12_000
        extra = await http.post("/api/calls", json={key: 1})
        assert extra.status_code == 422 and error(extra)["code"] == "invalid_request"
        assert len(error(extra)["field"]) <= 64 and len(error(extra)["message"]) < 200
        wrong_type = await http.post(
            "/api/calls", content=json.dumps({"profile": [name]}), headers=JSON
        )
        assert wrong_type.status_code == 422 and name not in wrong_type.text


async def test_only_json_bodies_create_calls(tmp_path: Path) -> None:
    async with app_server(tmp_path) as (base, _runtime), httpx.AsyncClient(base_url=base) as http:
        body = json.dumps({"profile": "barista"})
        for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
            headers = {"Content-Type": content_type} if content_type else {}
            r = await http.post("/api/calls", content=body, headers=headers)
            assert r.status_code == 415, content_type
            assert error(r)["code"] == "unsupported_media_type"
            assert error(r)["field"] == "content-type"
        with_charset = await http.post(
            "/api/calls", content=body, headers={"Content-Type": "Application/JSON; charset=utf-8"}
        )
        assert with_charset.status_code == 201 and with_charset.json()["profile"] == "barista"
        empty = await http.post("/api/calls", content=b"", headers=JSON)
        assert empty.status_code == 201 and empty.json()["profile"] == "default"
