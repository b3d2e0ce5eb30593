"""The landing role: the public page, the call API and the WebSocket media edge
(or, with LiveKit as the transport, the caller's join token for the call's room).

Routes stay thin: validation and shaping here, the work in CallStore,
CallAdmission and MediaEdge; errors are raised and rendered in one shape by
``roles/responses.py``. It keeps no state of its own, so any replica can serve
any call."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from importlib.resources import files
from typing import Annotated

from fastapi import APIRouter, Depends, Request, WebSocket
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, ValidationError

from voxfleet.domain.calls import CallStatus, new_call_id
from voxfleet.errors import (
    Forbidden,
    InvalidRequest,
    MalformedRequest,
    UnsupportedMediaType,
)
from voxfleet.observability.logging import get_logger
from voxfleet.observability.metrics import CALLS_STARTED
from voxfleet.roles.api_models import (
    CallCreated,
    CallOut,
    LiveKitJoin,
    ProfileOut,
    ProfilesOut,
    error_responses,
)
from voxfleet.roles.auth import CallReaderDep
from voxfleet.roles.deps import LandingDep, ProfilesDep, SettingsDep, StoreDep, stored_call
from voxfleet.roles.responses import clip, shorten
from voxfleet.settings import Settings
from voxfleet.transport.livekit.grants import caller_token

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


router = APIRouter()


@router.get("/", include_in_schema=False)
async def index() -> FileResponse:
    return FileResponse(str(STATIC_DIR.joinpath("index.html")))


@router.get("/api/profiles")
async def list_profiles(profiles: ProfilesDep) -> ProfilesOut:
    return ProfilesOut(
        default=profiles.default,
        profiles=[
            ProfileOut(name=name, title=p.title or name)
            for name in profiles.names()
            if (p := profiles.get(name)) is not None
        ],
    )


# The body is parsed by hand (parse_body) for its documented error codes; its
# schema is still declared here, so /openapi.json describes what is accepted.
_CREATE_CALL_BODY = {
    "requestBody": {
        "required": False,
        "content": {"application/json": {"schema": CreateCall.model_json_schema()}},
    }
}


@router.post(
    "/api/calls",
    status_code=201,
    openapi_extra=_CREATE_CALL_BODY,
    responses=error_responses(400, 413, 415, 422, 429, 503),
)
async def create_call(
    request: Request,
    client: ClientDep,
    landing: LandingDep,
    profiles: ProfilesDep,
    store: StoreDep,
    settings: SettingsDep,
) -> CallCreated:
    require_json(request)
    await landing.admission.check_rate(client)
    body = await parse_body(request)
    profile = profiles.get(body.profile)
    if profile is None:
        known = ", ".join(profiles.names())
        raise InvalidRequest(
            f"profile: no profile named {shorten(body.profile)}; known: {known}",
            code="unknown_profile",
            field="profile",
        )
    await landing.admission.check_queue()
    now = time.time()
    call_id = new_call_id()
    await store.create_call(call_id, profile.name, now)
    read_token, read_expires = landing.read_tokens.issue(call_id, now)
    if landing.livekit is not None:
        # The caller's media goes to LiveKit: its room is queued now (no media
        # socket will), and no media token is issued, so no socket can open.
        await landing.livekit.rooms.open(call_id, profile.name)
        join = livekit_join(settings, call_id)
        url, expires_at = None, join.token_expires_at
    else:
        join = None
        token, expires = landing.tokens.issue(call_id, now)
        url = media_url(settings.public_url or str(request.base_url), call_id, token)
        expires_at = datetime.fromtimestamp(expires, UTC)
    CALLS_STARTED.inc()
    log.info("call created", call_id=call_id, profile=profile.name, transport=settings.transport)
    return CallCreated(
        id=call_id,
        profile=profile.name,
        status=CallStatus.CREATED,
        media_url=url,
        token_expires_at=expires_at,
        read_token=read_token,
        read_token_expires_at=datetime.fromtimestamp(read_expires, UTC),
        livekit=join,
    )


def livekit_join(settings: Settings, call_id: str) -> LiveKitJoin:
    """The caller's way into the call's LiveKit room: its room only."""
    token, expires = caller_token(settings, call_id)
    return LiveKitJoin(
        url=settings.livekit_url or "",
        room=call_id,
        token=token,
        token_expires_at=datetime.fromtimestamp(expires, UTC),
    )


def ws_base(base: str) -> str:
    """The WebSocket address of ``base`` (a public or request URL)."""
    base = base.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base.removeprefix("https://")
    if base.startswith("http://"):
        return "ws://" + base.removeprefix("http://")
    return base


def media_url(base: str, call_id: str, token: str) -> str:
    return f"{ws_base(base)}/ws/calls/{call_id}?token={token}"


@router.get("/api/calls/{call_id}", responses=error_responses(401, 403, 404))
async def get_call(reader: CallReaderDep, store: StoreDep) -> CallOut:
    call = await stored_call(store, reader.call_id)
    if call.status == CallStatus.ENDED and not reader.admin:
        # A transcript is personal data: its caller reads it while talking, not forever.
        raise Forbidden(
            "authorization: the call has ended, and a read_token reads a call only while it "
            "is live; an ended call's record needs a signed-in monitor user or the admin API key",
            code="call_ended",
        )
    return CallOut.of(call)


@router.websocket("/ws/calls/{call_id}")
async def media_socket(
    websocket: WebSocket, call_id: str, landing: LandingDep, settings: SettingsDep
) -> None:
    base = ws_base(settings.public_url or str(websocket.base_url))
    await landing.edge.serve(websocket, call_id, base)
