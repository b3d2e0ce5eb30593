"""Signing in to the monitor, over real HTTP against the real app: a user's
password opens a server-side session held in an HttpOnly, SameSite=Strict
cookie; state changes need its CSRF token; attempts are rate limited; sessions
end on sign-out, when idle and at their absolute limit; viewers read, admins
also change; anonymous callers get nothing; the scaling token reads
/api/scaling only."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.redis_server import RedisServer
from tests.support.server import ADMIN_KEY, app_server
from voxfleet.roles.runtime import Role
from voxfleet.roles.sessions import SESSION_COOKIE

pytestmark = pytest.mark.integration

ADMIN, PASSWORD = "root", "correct horse battery"
SCALING_TOKEN = "scaling-token-0123456789abcdef"
MONITOR_ONLY = frozenset({Role.MONITOR})
SETTINGS = {"monitor_admin_user": ADMIN, "monitor_admin_password": PASSWORD}


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def error_of(r: httpx.Response) -> tuple[int, str, str]:
    error = r.json()["error"]
    return r.status_code, error["code"], error["message"]


async def sign_in(
    http: httpx.AsyncClient, name: str = ADMIN, password: str = PASSWORD, **headers: str
) -> httpx.Response:
    return await http.post(
        "/api/session", json={"name": name, "password": password}, headers=headers
    )


async def signed_in(http: httpx.AsyncClient, name: str = ADMIN, password: str = PASSWORD) -> str:
    """Sign ``http`` in; its CSRF token."""
    r = await sign_in(http, name, password)
    assert r.status_code == 200, r.text
    token: str = r.json()["csrf_token"]
    return token


async def test_the_first_admin_signs_in_with_a_strict_http_only_cookie(tmp_path: Path) -> None:
    async with (
        app_server(tmp_path, MONITOR_ONLY, **SETTINGS) as (base, runtime),
        httpx.AsyncClient(base_url=base) as http,
    ):
        assert runtime.accounts is not None and await runtime.accounts.users.count() == 1
        r = await sign_in(http)
        assert r.status_code == 200
        body = r.json()
        assert (body["name"], body["role"], body["via"]) == (ADMIN, "admin", "session")
        assert len(body["csrf_token"]) >= 32
        cookie = r.headers["set-cookie"]
        assert cookie.startswith(f"{SESSION_COOKIE}=")
        flags = {part.strip().lower() for part in cookie.split(";")}
        assert {"httponly", "samesite=strict", "path=/"} <= flags
        assert "secure" not in flags  # plain http here; see the https test
        # The cookie holds an id only, not who is signed in.
        assert ADMIN not in cookie and body["csrf_token"] not in cookie

        who = await http.get("/api/session")
        # The page learns the token again after a reload (another site cannot read this).
        assert who.json() == {
            "name": ADMIN,
            "role": "admin",
            "via": "session",
            "csrf_token": body["csrf_token"],
            "expires_at": None,
        }
        for route in ("/api/rooms", "/api/agents", "/api/scaling"):
            assert (await http.get(route)).status_code == 200, route
        paths = (await http.get("/openapi.json")).json()["paths"]
        declared = paths["/api/session"]["post"]["requestBody"]["content"]["application/json"]
        assert set(declared["schema"]["properties"]) == {"name", "password"}
        assert "requestBody" in paths["/api/users"]["post"]
        user = await runtime.accounts.users.get(ADMIN)
        assert user is not None and user.last_login_at is not None


async def test_the_cookie_is_secure_when_the_request_came_over_https(tmp_path: Path) -> None:
    async with (
        app_server(tmp_path, MONITOR_ONLY, **SETTINGS) as (base, _runtime),
        httpx.AsyncClient(base_url=base) as http,
    ):
        # As the trusted proxy in front (127.0.0.1) says it came over https.
        r = await sign_in(http, **{"X-Forwarded-Proto": "https"})
        assert r.status_code == 200
        assert "secure" in {part.strip().lower() for part in r.headers["set-cookie"].split(";")}


async def test_a_wrong_password_and_an_unknown_user_get_the_same_401(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with (
        app_server(tmp_path, MONITOR_ONLY, **SETTINGS) as (base, _runtime),
        httpx.AsyncClient(base_url=base) as http,
    ):
        wrong = await sign_in(http, password="not the password")
        unknown = await sign_in(http, name="nobody")
        for r in (wrong, unknown):
            assert error_of(r) == (401, "unauthorized", "sign-in: unknown user or wrong password")
            assert "set-cookie" not in r.headers
        assert (await http.get("/api/rooms")).status_code == 401
        records = caplog.records
        failed = [r.__dict__["fields"] for r in records if r.getMessage() == "sign-in failed"]
        assert [f["user"] for f in failed] == [ADMIN, "nobody"]
        logged = repr([(r.getMessage(), r.__dict__.get("fields")) for r in caplog.records])
        assert "not the password" not in logged and PASSWORD not in logged
        missing = await http.post("/api/session", json={"name": ADMIN})
        assert error_of(missing)[:2] == (422, "invalid_request")
        assert missing.json()["error"]["field"] == "password"
        as_form = await http.post("/api/session", data={"name": ADMIN, "password": PASSWORD})
        assert error_of(as_form)[:2] == (415, "unsupported_media_type")


async def test_state_changes_need_the_sessions_csrf_token(tmp_path: Path) -> None:
    async with (
        app_server(tmp_path, MONITOR_ONLY, **SETTINGS) as (base, _runtime),
        httpx.AsyncClient(base_url=base) as http,
    ):
        csrf = await signed_in(http)
        viewer = {"name": "watcher", "password": "a viewer password"}
        missing = await http.post("/api/users", json=viewer)
        status, code, message = error_of(missing)
        assert (status, code) == (403, "csrf") and message.startswith("X-CSRF-Token: missing")
        wrong = await http.post("/api/users", json=viewer, headers={"X-CSRF-Token": csrf + "x"})
        status, code, message = error_of(wrong)
        assert (status, code) == (403, "csrf") and "does not match" in message
        assert (await http.delete("/api/session")).status_code == 403
        # Another session's token is no good either.
        async with httpx.AsyncClient(base_url=base) as other:
            theirs = await signed_in(other)
        assert (
            await http.post("/api/users", json=viewer, headers={"X-CSRF-Token": theirs})
        ).status_code == 403
        ok = await http.post("/api/users", json=viewer, headers={"X-CSRF-Token": csrf})
        assert ok.status_code == 201 and ok.json()["role"] == "viewer"
        again = await http.post("/api/users", json=viewer, headers={"X-CSRF-Token": csrf})
        assert error_of(again)[:2] == (409, "conflict")


async def test_a_viewer_reads_but_only_an_admin_adds_users(tmp_path: Path) -> None:
    async with (
        app_server(tmp_path, MONITOR_ONLY, **SETTINGS) as (base, _runtime),
        httpx.AsyncClient(base_url=base) as admin,
        httpx.AsyncClient(base_url=base) as viewer,
    ):
        added = await admin.post(
            "/api/users",
            json={"name": "watcher", "password": "a viewer password"},
            headers=bearer(ADMIN_KEY),  # the admin key needs no CSRF token: no cookie
        )
        assert added.status_code == 201
        csrf = await signed_in(viewer, "watcher", "a viewer password")
        assert (await viewer.get("/api/session")).json()["role"] == "viewer"
        assert (await viewer.get("/api/rooms")).status_code == 200
        refused = await viewer.post(
            "/api/users",
            json={"name": "another", "password": "another password"},
            headers={"X-CSRF-Token": csrf},
        )
        assert error_of(refused) == (
            403,
            "forbidden",
            "role: this needs an admin; 'watcher' is a viewer",
        )
        short = await admin.post(
            "/api/users", json={"name": "x", "password": "short"}, headers=bearer(ADMIN_KEY)
        )
        assert error_of(short)[:2] == (422, "invalid_request")
        assert short.json()["error"]["field"] == "password"


async def test_sign_in_attempts_are_limited_per_address_and_per_name(tmp_path: Path) -> None:
    async with (
        app_server(tmp_path, MONITOR_ONLY, login_rate_limit="3/minute", **SETTINGS) as (base, _),
        httpx.AsyncClient(base_url=base) as http,
    ):
        # One address, three names: the fourth attempt is over the address's limit.
        for name in ("a", "b", "c"):
            r = await sign_in(http, name=name, **{"X-Forwarded-For": "203.0.113.1"})
            assert r.status_code == 401
        over = await sign_in(http, name="d", **{"X-Forwarded-For": "203.0.113.1"})
        status, code, message = error_of(over)
        assert (status, code) == (429, "rate_limited") and "address" in message
        assert 1 <= int(over.headers["retry-after"]) <= 60
        # One name from many addresses: the fourth is over the name's limit, even
        # with the right password.
        for i in range(3):
            await sign_in(http, password="wrong password", **{"X-Forwarded-For": f"198.51.100.{i}"})
        last = await sign_in(http, **{"X-Forwarded-For": "198.51.100.9"})
        status, code, message = error_of(last)
        assert (status, code) == (429, "rate_limited") and "user" in message


async def test_signing_out_and_idle_and_absolute_limits_end_a_session(tmp_path: Path) -> None:
    async with (
        app_server(
            tmp_path, MONITOR_ONLY, session_idle_seconds=60, session_max_seconds=600, **SETTINGS
        ) as (base, runtime),
        httpx.AsyncClient(base_url=base) as http,
    ):
        csrf = await signed_in(http)
        old = http.cookies[SESSION_COOKIE]
        out = await http.delete("/api/session", headers={"X-CSRF-Token": csrf})
        assert out.status_code == 204
        assert SESSION_COOKIE not in http.cookies  # the response cleared it
        # The old cookie, sent again, is dead: the session ended on the server.
        http.cookies.set(SESSION_COOKIE, old)
        status, code, message = error_of(await http.get("/api/rooms"))
        assert (status, code) == (401, "unauthorized") and message.startswith("session: expired")
        http.cookies.clear()
        # Signing in again replaces the session: the first one's id is dead.
        await signed_in(http)
        first_id = http.cookies[SESSION_COOKIE]
        await signed_in(http)
        assert http.cookies[SESSION_COOKIE] != first_id
        assert (await http.get("/api/rooms")).status_code == 200
        http.cookies.clear()
        http.cookies.set(SESSION_COOKIE, first_id)
        assert (await http.get("/api/rooms")).status_code == 401
        http.cookies.clear()
        sessions = runtime.sessions
        assert sessions is not None

        now = 1_000_000.0
        sessions.clock = lambda: now
        await signed_in(http)
        now += 59  # used within the idle limit: it lives on, from now
        assert (await http.get("/api/rooms")).status_code == 200
        now += 59
        assert (await http.get("/api/rooms")).status_code == 200
        now += 61  # idle too long
        assert (await http.get("/api/rooms")).status_code == 401

        await signed_in(http)
        for _ in range(11):  # used every 55 s: never idle, but 605 s old at the end
            now += 55
            last = await http.get("/api/rooms")
        assert last.status_code == 401


async def test_anonymous_callers_get_a_401_on_every_monitor_route(tmp_path: Path) -> None:
    async with (
        app_server(tmp_path, MONITOR_ONLY, **SETTINGS) as (base, _runtime),
        httpx.AsyncClient(base_url=base) as http,
    ):
        routes = [
            ("GET", "/api/rooms"),
            ("GET", "/api/agents"),
            ("GET", "/api/scaling"),
            ("GET", "/api/calls/c_AAAAAAAAAAAAAAAA"),
            ("GET", "/api/session"),
            ("DELETE", "/api/session"),
            ("POST", "/api/users"),
        ]
        for method, route in routes:
            r = await http.request(method, route, json={})
            status, code, message = error_of(r)
            assert (status, code) == (401, "unauthorized"), route
            assert "sign in" in message and "Authorization: Bearer" in message, route
        for probe in ("/livez", "/readyz", "/metrics"):
            assert (await http.get(probe)).status_code == 200, probe


async def test_the_scaling_token_reads_the_scaling_signal_only(tmp_path: Path) -> None:
    async with (
        app_server(tmp_path, MONITOR_ONLY, scaling_token=SCALING_TOKEN, **SETTINGS) as (base, _),
        httpx.AsyncClient(base_url=base, headers=bearer(SCALING_TOKEN)) as keda,
    ):
        r = await keda.get("/api/scaling")
        assert r.status_code == 200 and "desired_agents" in r.json()
        for method, route in (
            ("GET", "/api/rooms"),
            ("GET", "/api/agents"),
            ("GET", "/api/calls/c_AAAAAAAAAAAAAAAA"),
            ("GET", "/api/session"),
            ("POST", "/api/users"),
        ):
            refused = await keda.request(method, route, json={})
            assert error_of(refused) == (
                401,
                "unauthorized",
                "authorization: not the admin API key",
            ), route
        wrong = await keda.get("/api/scaling", headers=bearer(SCALING_TOKEN + "x"))
        assert error_of(wrong)[2] == "authorization: not the admin API key nor the scaling token"


async def test_sessions_in_redis_are_shared_by_monitor_replicas(tmp_path: Path) -> None:
    with RedisServer() as redis:
        shared = {
            "redis_url": redis.url,
            "database_url": f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}",
            **SETTINGS,
        }
        async with (
            app_server(tmp_path / "a", MONITOR_ONLY, **shared) as (first, runtime),
            app_server(tmp_path / "b", MONITOR_ONLY, **shared) as (second, _b),
            httpx.AsyncClient() as http,
        ):
            r = await http.post(f"{first}/api/session", json={"name": ADMIN, "password": PASSWORD})
            csrf = r.json()["csrf_token"]
            session_id = http.cookies[SESSION_COOKIE]
            assert (await http.get(f"{second}/api/rooms")).status_code == 200
            # Redis holds the session under a hash of its id, not the id itself.
            assert runtime.backends.redis is not None
            keys = [k.decode() for k in await runtime.backends.redis.keys("vf:session:*")]
            assert len(keys) == 1 and session_id not in keys[0]
            out = await http.delete(f"{second}/api/session", headers={"X-CSRF-Token": csrf})
            assert out.status_code == 204
            http.cookies.set(SESSION_COOKIE, session_id)
            assert (await http.get(f"{first}/api/rooms")).status_code == 401
            http.cookies.clear()
            await http.post(f"{first}/api/session", json={"name": ADMIN, "password": PASSWORD})
            redis.stop()
            down = await http.get(f"{second}/api/rooms")
            status, code, message = error_of(down)
            assert (status, code) == (503, "dispatch_unavailable")
            assert message.startswith("sessions: Redis is unavailable")


async def test_an_authenticating_proxys_user_header_is_trusted_only_when_set(
    tmp_path: Path,
) -> None:
    """With trusted_user_header, the user the proxy names is signed in (a viewer,
    or an admin when listed); state changes still need the CSRF token that
    GET /api/session hands out; without the setting the header opens nothing."""
    header = "X-Forwarded-Email"
    viewer = {"name": "carol", "password": "a long enough password"}
    async with (
        app_server(tmp_path / "off", MONITOR_ONLY, **SETTINGS) as (base, _runtime),
        httpx.AsyncClient(base_url=base) as http,
    ):
        r = await http.get("/api/rooms", headers={header: "mallory@example.com"})
        assert r.status_code == 401
    proxied = {**SETTINGS, "trusted_user_header": header, "trusted_admins": "ada@example.com"}
    async with (
        app_server(tmp_path / "on", MONITOR_ONLY, **proxied) as (base, _runtime),
        httpx.AsyncClient(base_url=base) as http,
    ):
        as_bob = {header: "bob@example.com"}
        who = (await http.get("/api/session", headers=as_bob)).json()
        assert (who["name"], who["role"], who["via"]) == ("bob@example.com", "viewer", "proxy")
        assert (await http.get("/api/rooms", headers=as_bob)).status_code == 200
        r = await http.post("/api/users", json=viewer, headers=as_bob)
        assert error_of(r)[:2] == (403, "csrf")
        r = await http.post(
            "/api/users", json=viewer, headers={**as_bob, "X-CSRF-Token": who["csrf_token"]}
        )
        assert error_of(r)[:2] == (403, "forbidden")  # a viewer
        as_ada = {header: "ada@example.com"}
        ada = (await http.get("/api/session", headers=as_ada)).json()
        assert ada["role"] == "admin" and ada["csrf_token"] != who["csrf_token"]
        stolen = {**as_ada, "X-CSRF-Token": who["csrf_token"]}  # bob's token is not ada's
        assert error_of(await http.post("/api/users", json=viewer, headers=stolen))[:2] == (
            403,
            "csrf",
        )
        ok = await http.post(
            "/api/users", json=viewer, headers={**as_ada, "X-CSRF-Token": ada["csrf_token"]}
        )
        assert ok.status_code == 201, ok.text
        # Without the header, no one: the proxy is the only way in besides the key.
        assert (await http.get("/api/rooms")).status_code == 401
        bad = await http.get("/api/rooms", headers={header: "x" * 300})
        assert bad.status_code == 401 and header in error_of(bad)[2]
