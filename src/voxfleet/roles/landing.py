"""The landing role: the public page, the call API and the WebSocket media edge.

Routes stay thin: validation and shaping here, the work in CallStore and
MediaEdge. It keeps no state of its own, so any replica can serve any call."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from importlib.resources import files
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request, WebSocket
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, ValidationError

from voxfleet.domain.calls import CallStatus, new_call_id
from voxfleet.observability.logging import get_logger
from voxfleet.observability.metrics import CALLS_STARTED
from voxfleet.roles import health, monitor
from voxfleet.roles.health import RuntimeDep
from voxfleet.roles.runtime import Role, Runtime
from voxfleet.store.repository import CallRecord

log = get_logger(__name__)
STATIC_DIR = files("voxfleet").joinpath("web/static")


class CreateCall(BaseModel):
    model_config = ConfigDict(extra="forbid")
    profile: str | None = None


def api_error(status: int, code: str, message: str, field: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    return JSONResponse({"error": body}, status_code=status)


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def call_json(call: CallRecord) -> dict[str, Any]:
    return {
        "id": call.id,
        "profile": call.profile,
        "status": call.status.value,
        "created_at": _iso(call.created_at),
        "started_at": _iso(call.started_at),
        "ended_at": _iso(call.ended_at),
        "end_reason": call.end_reason.value if call.end_reason else None,
        "turns": [
            {
                "seq": t.seq,
                "speaker": t.speaker.value,
                "text": t.text,
                "interrupted": t.interrupted,
                "started_at": _iso(t.started_at),
                "ended_at": _iso(t.ended_at),
                "latency_ms": t.marks.as_ms_from_speech_end(),
            }
            for t in call.turns
        ],
    }


def get_ws_runtime(websocket: WebSocket) -> Runtime:
    runtime: Runtime = websocket.app.state.runtime
    return runtime


WsRuntimeDep = Annotated[Runtime, Depends(get_ws_runtime)]

router = APIRouter()


@router.get("/", include_in_schema=False)
async def index() -> FileResponse:
    return FileResponse(str(STATIC_DIR.joinpath("index.html")))


@router.get("/api/profiles")
async def list_profiles(runtime: RuntimeDep) -> dict[str, Any]:
    profiles = runtime.profiles
    return {
        "default": profiles.default,
        "profiles": [
            {"name": name, "title": p.title or name}
            for name in profiles.names()
            if (p := profiles.get(name)) is not None
        ],
    }


@router.post("/api/calls", status_code=201, response_model=None)
async def create_call(request: Request, runtime: RuntimeDep) -> JSONResponse:
    raw = await request.body()
    try:
        data = json.loads(raw) if raw.strip() else {}
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        return api_error(400, "invalid_json", f"body: not valid JSON ({e})")
    if not isinstance(data, dict):
        return api_error(422, "invalid_request", "body: expected a JSON object")
    try:
        body = CreateCall.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "body"
        return api_error(422, "invalid_request", f"{field}: {first['msg']}", field)
    profile = runtime.profiles.get(body.profile)
    if profile is None:
        known = ", ".join(runtime.profiles.names())
        return api_error(
            422,
            "unknown_profile",
            f"profile: no profile named {body.profile!r}; known: {known}",
            "profile",
        )
    now = time.time()
    call_id = new_call_id()
    await runtime.store.create_call(call_id, profile.name, now)
    token, expires = runtime.tokens.issue(call_id, now)
    CALLS_STARTED.inc()
    log.info("call created", call_id=call_id, profile=profile.name)
    return JSONResponse(
        {
            "id": call_id,
            "profile": profile.name,
            "status": CallStatus.CREATED.value,
            "media_url": media_url(request, runtime, call_id, token),
            "token_expires_at": _iso(expires),
        },
        status_code=201,
    )


def media_url(request: Request, runtime: Runtime, call_id: str, token: str) -> str:
    base = runtime.settings.public_url or str(request.base_url)
    base = base.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base.removeprefix("https://")
    elif base.startswith("http://"):
        base = "ws://" + base.removeprefix("http://")
    return f"{base}/ws/calls/{call_id}?token={token}"


@router.get("/api/calls/{call_id}", response_model=None)
async def get_call(call_id: str, runtime: RuntimeDep) -> JSONResponse:
    call = await runtime.store.get_call(call_id)
    if call is None:
        return api_error(404, "not_found", f"call: no call with id {call_id!r}")
    return JSONResponse(call_json(call))


@router.websocket("/ws/calls/{call_id}")
async def media_socket(websocket: WebSocket, call_id: str, runtime: WsRuntimeDep) -> None:
    await runtime.edge.serve(websocket, call_id, websocket.query_params.get("token"))


def create_app(runtime: Runtime) -> FastAPI:
    """The HTTP app of a process, with the routes of the roles it plays; every
    role gets the probes and metrics."""
    app = FastAPI(title="voxfleet", version="0.1.0", lifespan=runtime.lifespan)
    app.state.runtime = runtime
    app.include_router(health.router)
    if Role.LANDING in runtime.roles:
        app.include_router(router)
        app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    if Role.MONITOR in runtime.roles:
        app.include_router(monitor.router)
    return app
