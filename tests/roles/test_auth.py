"""Who may read what, over real HTTP: the monitor routes need the admin API key
(or a sign-in: test_monitor_signin.py); a call's record needs that key, a
sign-in, or the call's own read token while the call is live (a media token, a
token of another call or no token at all are refused); the probes stay open.
And the admin key a dev process generates for itself."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import httpx
import pytest

from tests.support.server import ADMIN_KEY, app_server
from voxfleet.client import CallClient
from voxfleet.domain.calls import EndReason
from voxfleet.errors import ConfigError
from voxfleet.roles.auth import ADMIN_KEY_FILE, ensure_admin_key
from voxfleet.roles.runtime import Role
from voxfleet.settings import Settings

pytestmark = pytest.mark.integration

MONITOR_ROUTES = ("/api/rooms", "/api/agents", "/api/scaling")


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def error_code(r: httpx.Response) -> str:
    code: str = r.json()["error"]["code"]
    return code


async def test_monitor_routes_need_the_admin_key_and_probes_do_not(tmp_path: Path) -> None:
    async with app_server(tmp_path) as (base, _runtime), httpx.AsyncClient(base_url=base) as http:
        for route in MONITOR_ROUTES:
            anonymous = await http.get(route)
            assert anonymous.status_code == 401, route
            assert anonymous.headers["www-authenticate"] == "Bearer"
            assert error_code(anonymous) == "unauthorized"
            assert "Authorization: Bearer" in anonymous.json()["error"]["message"]
            wrong = await http.get(route, headers=bearer(ADMIN_KEY + "x"))
            assert wrong.status_code == 401, route
            basic = await http.get(route, headers={"Authorization": f"Basic {ADMIN_KEY}"})
            assert basic.status_code == 401, route
            assert (await http.get(route, headers=bearer(ADMIN_KEY))).status_code == 200, route
        for probe in ("/livez", "/readyz", "/metrics"):
            assert (await http.get(probe)).status_code == 200, probe


async def test_a_call_is_read_with_its_read_token_or_the_admin_key_only(tmp_path: Path) -> None:
    async with app_server(tmp_path) as (base, _runtime), httpx.AsyncClient(base_url=base) as http:
        mine, other = CallClient(base), CallClient(base)
        created = await mine.create()
        await other.create()
        assert mine.read_token and created["read_token"] == mine.read_token
        assert created["read_token_expires_at"].endswith("Z")
        path = f"/api/calls/{mine.call_id}"

        assert (await mine.get_call())["id"] == mine.call_id
        assert (await http.get(path, headers=bearer(ADMIN_KEY))).status_code == 200

        anonymous = await http.get(path)
        assert anonymous.status_code == 401 and error_code(anonymous) == "unauthorized"
        assert anonymous.headers["www-authenticate"] == "Bearer"
        media_token = created["media_url"].split("token=")[1]
        as_media = await http.get(path, headers=bearer(media_token))
        assert as_media.status_code == 401 and error_code(as_media) == "token_invalid"
        assert (await http.get(path, headers=bearer("forged.token"))).status_code == 401
        assert other.read_token is not None
        foreign = await http.get(path, headers=bearer(other.read_token))
        assert foreign.status_code == 403 and error_code(foreign) == "token_foreign"
        # Refused before the lookup: an unknown id tells a token holder nothing more.
        unknown = await http.get("/api/calls/c_0000000000000000", headers=bearer(mine.read_token))
        assert unknown.status_code == 403


async def test_media_socket_refuses_a_read_token(tmp_path: Path) -> None:
    async with app_server(tmp_path) as (base, _runtime):
        call = CallClient(base)
        created = await call.create()
        assert call.read_token is not None
        url = created["media_url"].split("token=")[0] + f"token={call.read_token}"
        await call.connect(url, wait_ready=False)
        code, reason = await call.closed()
        assert code == 4401 and reason is not None and "media token" in reason


async def test_read_tokens_expire(tmp_path: Path) -> None:
    async with app_server(tmp_path) as (base, runtime), httpx.AsyncClient(base_url=base) as http:
        call = CallClient(base)
        await call.create()
        stale, _expires = runtime.landing.read_tokens.issue(call.call_id, now=0.0)
        r = await http.get(f"/api/calls/{call.call_id}", headers=bearer(stale))
        assert r.status_code == 401 and error_code(r) == "token_expired"


async def test_ids_are_checked_for_shape_before_any_query(
    tmp_path: Path, postgres_url: str
) -> None:
    """On PostgreSQL a NUL byte in a query parameter is an encoding error (it was
    a 500): ids that are not shaped like ours never reach the database."""
    async with (
        app_server(tmp_path, database_url=postgres_url) as (base, _runtime),
        httpx.AsyncClient(base_url=base, headers=bearer(ADMIN_KEY)) as http,
    ):
        for bad in (
            "%00",
            "c_%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00",
            "c_short",
            "x" * 300,
        ):
            r = await http.get(f"/api/calls/{bad}")
            assert r.status_code == 404, bad
            assert error_code(r) == "not_found"
            assert len(r.json()["error"]["message"]) < 120
        well_formed_unknown = await http.get("/api/calls/c_AAAAAAAAAAAAAAAA")
        assert well_formed_unknown.status_code == 404


def test_a_dev_process_generates_its_admin_key_once_and_keeps_it(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", _env_file=None)  # type: ignore[call-arg]
    first, path = ensure_admin_key(settings)
    assert path == tmp_path / "data" / ADMIN_KEY_FILE
    assert first.admin_api_key is not None
    key = first.admin_api_key.get_secret_value()
    assert len(key) >= 32 and path.read_text().strip() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again, _ = ensure_admin_key(settings)
    assert again.admin_api_key is not None and again.admin_api_key.get_secret_value() == key


def test_a_configured_admin_key_is_used_as_is_and_prod_requires_one(tmp_path: Path) -> None:
    configured = Settings(data_dir=tmp_path, admin_api_key=ADMIN_KEY, _env_file=None)  # type: ignore[call-arg]
    assert ensure_admin_key(configured) == (configured, None)
    assert not (tmp_path / ADMIN_KEY_FILE).exists()
    prod = Settings(
        env="prod",
        secret_key="a-production-secret-of-32-chars!",
        data_dir=tmp_path,
        _env_file=None,  # type: ignore[call-arg]
    )
    with pytest.raises(ConfigError, match="admin_api_key"):
        ensure_admin_key(prod)


async def test_a_read_token_reads_its_call_only_while_it_is_live(tmp_path: Path) -> None:
    """After the call ended, its transcript needs the admin key or a signed-in
    monitor user: the caller's token is no longer enough."""
    password = "monitor admin password"
    async with (
        app_server(tmp_path, monitor_admin_password=password) as (base, runtime),
        httpx.AsyncClient(base_url=base) as http,
    ):
        call = CallClient(base)
        await call.create()
        assert call.read_token is not None and runtime.store is not None
        path = f"/api/calls/{call.call_id}"
        assert (await http.get(path, headers=bearer(call.read_token))).status_code == 200
        await runtime.store.end_call(call.call_id, EndReason.CALLER_ENDED, time.time())

        ended = await http.get(path, headers=bearer(call.read_token))
        assert ended.status_code == 403 and error_code(ended) == "call_ended"
        assert "signed-in monitor user or the admin API key" in ended.json()["error"]["message"]
        as_admin = await http.get(path, headers=bearer(ADMIN_KEY))
        assert as_admin.status_code == 200 and as_admin.json()["status"] == "ended"
        # A monitor user's session cookie reads it on the landing too.
        signed = await http.post("/api/session", json={"name": "admin", "password": password})
        assert signed.status_code == 200
        assert (await http.get(path)).json()["id"] == call.call_id


async def test_the_monitor_alone_serves_a_call_to_signed_in_users(tmp_path: Path) -> None:
    password = "monitor admin password"
    async with (
        app_server(tmp_path, frozenset({Role.MONITOR}), monitor_admin_password=password) as (
            base,
            runtime,
        ),
        httpx.AsyncClient(base_url=base) as http,
    ):
        assert runtime.store is not None
        await runtime.store.create_call("c_AAAAAAAAAAAAAAAA", "default", time.time())
        path = "/api/calls/c_AAAAAAAAAAAAAAAA"
        assert error_code(await http.get(path)) == "unauthorized"
        await http.post("/api/session", json={"name": "admin", "password": password})
        record = await http.get(path)
        assert record.status_code == 200 and record.json()["profile"] == "default"
        assert (await http.get("/api/calls/c_BBBBBBBBBBBBBBBB")).status_code == 404
