"""The HTTP apps of a process: which routes each serves, behind which
middleware. Every app gets the probes and metrics (open: the cluster's probes
and scraper reach them); the monitor routes need a signed-in user or the
admin API key.

`voxfleet up` builds two apps on one runtime: the public one (the landing) and
an admin one (the monitor routes) for its own listener, so the live call list
is never served where the page is."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from voxfleet.errors import VoxfleetError
from voxfleet.roles import (
    actions,
    health,
    history,
    landing,
    latency,
    live,
    livekit_webhook,
    monitor,
    monitor_page,
    signin,
)
from voxfleet.roles.middleware import BodyLimit, OriginCheck, SecurityHeaders
from voxfleet.roles.responses import handle_voxfleet_error
from voxfleet.roles.runtime import Role, Runtime

DOCS_PATHS = ("/docs", "/docs/oauth2-redirect", "/redoc")


def create_app(
    runtime: Runtime, parts: frozenset[Role] | None = None, lifespan: bool = True
) -> FastAPI:
    """An app serving the routes of ``parts`` (default: the runtime's roles).
    ``lifespan``: this app starts and stops the runtime (exactly one app of a
    process does)."""
    parts = runtime.roles if parts is None else parts
    settings = runtime.settings
    app = FastAPI(
        title="voxfleet",
        version="0.1.0",
        lifespan=runtime.lifespan if lifespan else None,
        docs_url="/docs" if settings.api_docs else None,
        redoc_url="/redoc" if settings.api_docs else None,
    )
    app.state.runtime = runtime
    app.add_exception_handler(VoxfleetError, handle_voxfleet_error)
    app.include_router(health.router)
    if Role.MONITOR in parts:
        # Before the landing's GET /api/calls/{id}, which would take /api/calls/export.
        app.include_router(history.router)
        app.mount(
            "/monitor-static",
            StaticFiles(directory=str(history.PAGES_DIR)),
            name="monitor-static",
        )
    if Role.LANDING in parts:
        app.include_router(landing.router)
        if settings.transport == "livekit":
            app.include_router(livekit_webhook.router)
        app.mount("/static", StaticFiles(directory=str(landing.STATIC_DIR)), name="static")
    if Role.MONITOR in parts:
        app.include_router(monitor.router)
        app.include_router(signin.router)
        app.include_router(live.router)
        app.include_router(actions.router)
        app.include_router(latency.router)
        if Role.LANDING not in parts:
            app.include_router(monitor.calls_router)
            app.include_router(monitor_page.router)
            directory = str(monitor_page.MONITOR_DIR)
            app.mount("/monitor", StaticFiles(directory=directory), name="monitor")
    # Outermost last: headers go on every response, including the 413s.
    app.add_middleware(
        OriginCheck, allowed=settings.allowed_origins, public_origin=settings.public_origin
    )
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        SecurityHeaders,
        public_origin=settings.public_origin,
        exempt=DOCS_PATHS if settings.api_docs else (),
        livekit_url=settings.livekit_url if settings.transport == "livekit" else None,
    )
    return app
