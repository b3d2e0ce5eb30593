"""Signing in to the monitor: ``POST /api/session`` checks a name and password
(rate limited per address and per name), starts a server-side session and
sets its id as an HttpOnly, SameSite=Strict cookie (Secure over https);
``GET`` says who is signed in; ``DELETE`` signs out. docs/monitor.md has the
whole story."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from voxfleet.errors import AuthError, ConfigError, InvalidRequest, MalformedRequest
from voxfleet.observability.logging import get_logger
from voxfleet.roles.accounts import Accounts
from voxfleet.roles.api_models import error_responses
from voxfleet.roles.deps import RuntimeDep, SettingsDep
from voxfleet.roles.landing import ClientDep, require_json
from voxfleet.roles.login_limit import LoginLimiter
from voxfleet.roles.monitor_auth import MonitorUserDep, sessions_of
from voxfleet.roles.responses import clip
from voxfleet.roles.sessions import SESSION_COOKIE, SessionStore
from voxfleet.settings import Settings
from voxfleet.store.users import UserRole

log = get_logger(__name__)
router = APIRouter(prefix="/api")


class Credentials(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class SignedIn(BaseModel):
    name: str
    role: UserRole
    via: str
    csrf_token: str | None = Field(
        None, description="Send it back as X-CSRF-Token on every POST, PUT, PATCH and DELETE."
    )
    expires_at: datetime | None = Field(None, description="The latest the session can last.")


M = TypeVar("M", bound=BaseModel)


async def json_body(request: Request, model: type[M]) -> M:
    """The body as ``model``, with errors that name the field."""
    require_json(request)
    try:
        data = json.loads(await request.body())
    except (ValueError, RecursionError) as e:
        raise MalformedRequest("body: not valid JSON", code="invalid_json") from e
    if not isinstance(data, dict):
        raise InvalidRequest("body: expected a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        field = clip(".".join(str(p) for p in first["loc"]) or "body")
        raise InvalidRequest(f"{field}: {first['msg']}", field=field) from e


def json_body_doc(model: type[BaseModel]) -> dict[str, object]:
    """``openapi_extra`` declaring a body that ``json_body`` parses by hand."""
    schema = model.model_json_schema()
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def accounts_of(runtime: RuntimeDep) -> tuple[Accounts, LoginLimiter]:
    if runtime.accounts is None or runtime.login is None:
        raise ConfigError("this process has no monitor accounts (it plays no monitor role)")
    return runtime.accounts, runtime.login


def secure_cookie(request: Request, settings: Settings) -> bool:
    public = settings.public_url or ""
    return request.url.scheme == "https" or public.startswith("https://")


@router.post(
    "/session",
    responses=error_responses(401, 415, 422, 429),
    openapi_extra=json_body_doc(Credentials),
)
async def sign_in(
    request: Request,
    response: Response,
    client: ClientDep,
    runtime: RuntimeDep,
    settings: SettingsDep,
    sessions: Annotated[SessionStore, Depends(sessions_of)],
) -> SignedIn:
    accounts, limiter = accounts_of(runtime)
    body = await json_body(request, Credentials)
    await limiter.check(client, body.name)
    user = await accounts.authenticate(body.name, body.password)
    if user is None:
        # The name, never the password: a password typed into the name field is rare.
        log.warning("sign-in failed", user=clip(body.name), client=client)
        raise AuthError("sign-in: unknown user or wrong password")
    previous = request.cookies.get(SESSION_COOKIE)
    if previous:  # signing in again replaces the session rather than adding one
        await sessions.end(previous)
    session_id, session = await sessions.start(user.name, user.role)
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=settings.session_max_seconds,
        path="/",
        secure=secure_cookie(request, settings),
        httponly=True,
        samesite="strict",
    )
    log.info("signed in", user=user.name, role=user.role.value, client=client)
    expires = datetime.fromtimestamp(session.started_at + settings.session_max_seconds, UTC)
    return SignedIn(
        name=user.name, role=user.role, via="session", csrf_token=session.csrf, expires_at=expires
    )


@router.get("/session", responses=error_responses(401))
async def who(principal: MonitorUserDep) -> SignedIn:
    """Who is signed in, with the CSRF token to send back (a reloaded page has
    its cookie but lost the token; another site cannot read this answer)."""
    return SignedIn(
        name=principal.name, role=principal.role, via=principal.via, csrf_token=principal.csrf
    )


@router.delete("/session", status_code=204, responses=error_responses(401, 403))
async def sign_out(
    principal: MonitorUserDep,
    response: Response,
    sessions: Annotated[SessionStore, Depends(sessions_of)],
) -> None:
    if principal.session_id is not None:
        await sessions.end(principal.session_id)
        log.info("signed out", user=principal.name)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
