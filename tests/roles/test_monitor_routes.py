"""Every route the monitor serves, walked from the app's own route table rather
than listed by hand, so a route added later cannot be forgotten: anonymous
requests get 401 (sockets: closed with 4401), and so does the scaling token
everywhere but /api/scaling, except for a short allow-list, each entry with
its reason. Both apps that serve the monitor are walked over real sockets:
`voxfleet monitor`'s and the admin listener of `voxfleet up`."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Literal

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.staticfiles import StaticFiles
from starlette.routing import Mount, Route, WebSocketRoute
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.roles.test_monitor_signin import SCALING_TOKEN, SETTINGS, bearer
from tests.support.server import ADMIN_KEY, free_port, serving
from voxfleet.domain.calls import is_call_id
from voxfleet.roles.app import create_app
from voxfleet.roles.runtime import Role, Runtime
from voxfleet.settings import Settings
from voxfleet.transport.wsprotocol import EdgeWebSocketProtocol

pytestmark = pytest.mark.integration

# Well-formed values for path parameters, so a refusal is the auth's and not a
# validator's. A new parameter name fails the walk until it is given one here.
PATH_VALUES = {"call_id": "c_AAAAAAAAAAAAAAAA", "agent_id": "agent-0123"}

# (method, path) open to anyone. HEAD follows GET.
OPEN = {
    # The cluster's liveness and readiness probes, on every role.
    ("GET", "/livez"),
    ("GET", "/readyz"),
    # Prometheus scrapes it; it carries counts and latencies, no ids or words.
    ("GET", "/metrics"),
    # Signing in is how an anonymous caller stops being one (rate limited).
    ("POST", "/api/session"),
    # The operations and history pages: static shells that show nothing until a
    # signed-in session reads the routes above (they show the sign-in form).
    ("GET", "/"),
    ("GET", "/history"),
    # The API's description: route shapes only, as public as the source code.
    ("GET", "/openapi.json"),
    # With VOXFLEET_API_DOCS (off by default): viewers of /openapi.json.
    ("GET", "/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("GET", "/redoc"),
}
# Static mounts: the pages' own scripts and stylesheets (no data in them).
OPEN_MOUNTS = {"/monitor", "/monitor-static"}
# The one route the scaling token opens (KEDA's metrics-api trigger).
SCALING_ONLY = ("GET", "/api/scaling")


def filled(path: str) -> str:
    def value(m: re.Match[str]) -> str:
        name = m[1]
        assert name in PATH_VALUES, f"{path}: give path parameter {name!r} a value in PATH_VALUES"
        return PATH_VALUES[name]

    return re.sub(r"{(\w+)(?::\w+)?}", value, path)


def a_file_of(path: str, mount: Mount) -> str:
    """The URL of one file a static mount serves."""
    assert isinstance(mount.app, StaticFiles), (
        f"{path}: a mounted app the walk does not know; walk its routes too"
    )
    directory = Path(str(mount.app.directory))
    first = next(p for p in sorted(directory.rglob("*")) if p.is_file())
    return f"{path}/{first.relative_to(directory).as_posix()}"


async def refused_socket(base: str, path: str, headers: dict[str, str]) -> tuple[int, str]:
    """The close code and reason a socket gets; a refused handshake is an HTTP status."""
    url = base.replace("http://", "ws://") + path
    try:
        async with connect(url, additional_headers=headers, open_timeout=10) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
    except InvalidStatus as e:
        return e.response.status_code, "handshake refused"
    assert closed.value.rcvd is not None, path
    return closed.value.rcvd.code, closed.value.rcvd.reason


WHO = {"anonymous": {}, "scaling token": bearer(SCALING_TOKEN)}


async def mount_wrong(http: httpx.AsyncClient, path: str, mount: Mount) -> list[str]:
    url = a_file_of(path, mount)
    r = await http.get(url)
    if path in OPEN_MOUNTS:
        assert r.status_code == 200, url
        return []
    return [f"GET {url} (mount {path}): {r.status_code}"] if r.status_code != 401 else []


async def socket_wrong(base: str, path: str) -> list[str]:
    wrong = []
    for who, headers in WHO.items():
        code, reason = await refused_socket(base, path, headers)
        if code != 4401:
            wrong.append(f"WS {path} as {who}: closed {code} {reason!r}")
    return wrong


async def http_wrong(http: httpx.AsyncClient, method: str, template: str) -> list[str]:
    path = filled(template)
    key = ("GET" if method == "HEAD" else method, template)
    wrong = []
    for who, headers in WHO.items():
        r = await http.request(method, path, json={}, headers=headers)
        if key in OPEN or (who == "scaling token" and key == SCALING_ONLY):
            assert r.status_code not in (401, 403), f"{method} {path} is meant to be open to {who}"
        elif r.status_code != 401 or (
            method != "HEAD" and r.json()["error"]["code"] != "unauthorized"
        ):
            wrong.append(f"{method} {path} as {who}: {r.status_code}")
    return wrong


async def walk(app: FastAPI, base: str) -> list[str]:
    """Requests every route of ``app`` as nobody and as the scaling token;
    what is open that should not be, one line each."""
    wrong: list[str] = []
    served: set[tuple[str, str]] = set()
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        # FastAPI keeps included routers as such in app.routes; this flattens
        # them into the routes they serve, as its OpenAPI generator does.
        for route in iter_route_contexts(app.routes):
            original, template = route.original_route, str(route.path)
            if isinstance(original, Mount):
                wrong += await mount_wrong(http, template, original)
            elif isinstance(original, WebSocketRoute):
                wrong += await socket_wrong(base, filled(template))
            else:
                assert isinstance(original, Route), f"a route the walk does not know: {route}"
                for method in sorted(route.methods or ()):
                    served.add((method, template))
                    wrong += await http_wrong(http, method, template)
    assert SCALING_ONLY in served, "no GET /api/scaling: is this the monitor's app?"
    # Allow-listed routes that are not served any more: the list must not rot.
    docs = {("GET", p) for p in ("/docs", "/docs/oauth2-redirect", "/redoc")}
    missing = OPEN - served - (set() if app.docs_url else docs)
    assert not missing, f"allow-listed but not served: {sorted(missing)}"
    return wrong


def settings_for(tmp_path: Path, port: int, **overrides: object) -> Settings:
    return Settings(
        port=port,
        data_dir=tmp_path,
        providers="scripted",
        _env_file=None,  # type: ignore[call-arg]
        **{
            "admin_api_key": ADMIN_KEY,
            "scaling_token": SCALING_TOKEN,
            **SETTINGS,
            **overrides,
        },
    )


def config(app: FastAPI, port: int, lifespan: Literal["on", "off"]) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        lifespan=lifespan,
        ws=EdgeWebSocketProtocol,
    )


@contextlib.asynccontextmanager
async def monitor_app(tmp_path: Path) -> AsyncIterator[tuple[FastAPI, str]]:
    """`voxfleet monitor`'s app (with the API docs on, so they are walked too)."""
    port = free_port()
    runtime = Runtime(settings_for(tmp_path, port, api_docs=True), frozenset({Role.MONITOR}))
    app = create_app(runtime)
    async with serving(config(app, port, "on")):
        yield app, f"http://127.0.0.1:{port}"


@contextlib.asynccontextmanager
async def up_admin_app(tmp_path: Path) -> AsyncIterator[tuple[FastAPI, str]]:
    """`voxfleet up`'s admin listener, as serve.py builds it: one runtime of
    every role, its public app (which starts the runtime) without the monitor."""
    port, admin_port = free_port(), free_port()
    runtime = Runtime(settings_for(tmp_path, port, admin_port=admin_port), frozenset(Role))
    public = create_app(runtime, frozenset({Role.LANDING, Role.AGENT}))
    admin = create_app(runtime, frozenset({Role.MONITOR}), lifespan=False)
    async with serving(config(public, port, "on")), serving(config(admin, admin_port, "off")):
        yield admin, f"http://127.0.0.1:{admin_port}"


APPS = {"voxfleet monitor": monitor_app, "voxfleet up admin listener": up_admin_app}


@pytest.mark.parametrize("served", APPS)
async def test_every_monitor_route_refuses_anonymous_callers_and_the_scaling_token(
    tmp_path: Path, served: str
) -> None:
    assert is_call_id(PATH_VALUES["call_id"])
    async with APPS[served](tmp_path) as (app, base):
        wrong = await walk(app, base)
    assert wrong == [], "open to the wrong caller:\n" + "\n".join(wrong)
