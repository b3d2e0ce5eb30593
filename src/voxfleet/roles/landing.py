"""The landing role: the public page, the call API and the WebSocket media edge.

Routes stay thin: validation and shaping here, the work in CallStore,
CallAdmission and MediaEdge; errors are raised and rendered in one shape by
``roles/responses.py``. It keeps no state of its own, so any replica can serve
any call."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from importlib.resources import files
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, WebSocket
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, ValidationError

from voxfleet.domain.calls import CallStatus, is_call_id, new_call_id
from voxfleet.errors import InvalidRequest, MalformedRequest, NotFound, UnsupportedMediaType
from voxfleet.observability.logging import get_logger
from voxfleet.observability.metrics import CALLS_STARTED
from voxfleet.roles.auth import CallReaderDep
from voxfleet.roles.health import RuntimeDep
from voxfleet.roles.responses import clip, shorten
from voxfleet.roles.runtime import Runtime
from voxfleet.store.repository import CallRecord

log = get_logger(__name__)
STATIC_DIR = files("voxfleet").joinpath("web/static")


class CreateCall(BaseModel):
    model_config = ConfigDict(extra="forbid")
    profile: str | None = None


def require_json(request: Request) -> None:
    """Only ``application/json`` bodies: a browser sends those cross-site only
    after a CORS preflight, which this server never grants."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaType(
            f"content-type: expected application/json, got {shorten(media_type or None)}",
            field="content-type",
        )


async def parse_body(request: Request) -> CreateCall:
    """The body as a CreateCall; an empty body means every field's default."""
    raw = await request.body()
    try:
        data = json.loads(raw) if raw.strip() else {}
    except (ValueError, RecursionError) as e:  # JSONDecodeError, > 4300 digits, deep nesting
        why = "nested too deeply" if isinstance(e, RecursionError) else clip(str(e), 120)
        raise MalformedRequest(f"body: not valid JSON ({why})", code="invalid_json") from e
    if not isinstance(data, dict):
        raise InvalidRequest("body: expected a JSON object")
    try:
        return CreateCall.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        field = clip(".".join(str(p) for p in first["loc"]) or "body")
        raise InvalidRequest(f"{field}: {first['msg']}", field=field) from e


def client_address(request: Request) -> str:
    """The client the rate limit counts: the connection's peer, or the address a
    trusted proxy forwarded (VOXFLEET_FORWARDED_ALLOW_IPS)."""
    return request.client.host if request.client is not None else "unknown"


ClientDep = Annotated[str, Depends(client_address)]


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
async def create_call(request: Request, runtime: RuntimeDep, client: ClientDep) -> JSONResponse:
    require_json(request)
    await runtime.admission.check_rate(client)
    body = await parse_body(request)
    profile = runtime.profiles.get(body.profile)
    if profile is None:
        known = ", ".join(runtime.profiles.names())
        raise InvalidRequest(
            f"profile: no profile named {shorten(body.profile)}; known: {known}",
            code="unknown_profile",
            field="profile",
        )
    await runtime.admission.check_queue()
    now = time.time()
    call_id = new_call_id()
    await runtime.store.create_call(call_id, profile.name, now)
    token, expires = runtime.tokens.issue(call_id, now)
    read_token, read_expires = runtime.read_tokens.issue(call_id, now)
    CALLS_STARTED.inc()
    log.info("call created", call_id=call_id, profile=profile.name)
    return JSONResponse(
        {
            "id": call_id,
            "profile": profile.name,
            "status": CallStatus.CREATED.value,
            "media_url": media_url(request, runtime, call_id, token),
            "token_expires_at": _iso(expires),
            "read_token": read_token,
            "read_token_expires_at": _iso(read_expires),
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
async def get_call(reader: CallReaderDep, runtime: RuntimeDep) -> JSONResponse:
    missing = NotFound(f"call: no call with id {shorten(reader.call_id)}")
    if not is_call_id(reader.call_id):
        raise missing
    call = await runtime.store.get_call(reader.call_id)
    if call is None:
        raise missing
    return JSONResponse(call_json(call))


@router.websocket("/ws/calls/{call_id}")
async def media_socket(websocket: WebSocket, call_id: str, runtime: WsRuntimeDep) -> None:
    await runtime.edge.serve(websocket, call_id, websocket.query_params.get("token"))
