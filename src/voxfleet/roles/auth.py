"""Who may read a call's record over HTTP: the admin API key
(``Authorization: Bearer <key>``) or a signed-in monitor user (its session
cookie) reads any call; a call's read token (returned only to whoever created
the call) reads that call only, and only until it ends: transcripts are not
kept public. The monitor's own routes are guarded in ``monitor_auth.py``."""

from __future__ import annotations

import hmac
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from pydantic import SecretStr

from voxfleet.errors import AuthError, ConfigError
from voxfleet.observability.logging import get_logger
from voxfleet.roles.deps import LandingDep, RuntimeDep, SettingsDep
from voxfleet.roles.sessions import SESSION_COOKIE
from voxfleet.settings import ADMIN_KEY_MIN_LENGTH, Settings

log = get_logger(__name__)
ADMIN_KEY_FILE = "admin-api-key"


def bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    value = value.strip()
    return value if scheme.lower() == "bearer" and value else None


def is_admin_key(settings: Settings, presented: str) -> bool:
    key = settings.admin_api_key
    return key is not None and hmac.compare_digest(
        presented.encode(), key.get_secret_value().encode()
    )


@dataclass(frozen=True, slots=True)
class Admin:
    """The caller presented the admin API key."""


@dataclass(frozen=True, slots=True)
class CallReader:
    """The caller may read ``call_id``: ``admin`` (the admin key or a signed-in
    monitor user) at any time, else with that call's read token while it is live."""

    call_id: str
    admin: bool


def require_admin(request: Request, settings: SettingsDep) -> Admin:
    presented = bearer(request)
    if presented is None:
        raise AuthError("authorization: send the admin API key as `Authorization: Bearer <key>`")
    if not is_admin_key(settings, presented):
        raise AuthError("authorization: not the admin API key")
    return Admin()


async def call_reader(
    call_id: str, request: Request, runtime: RuntimeDep, settings: SettingsDep, landing: LandingDep
) -> CallReader:
    """Checked before the call is looked up: a token of another call gets 403
    whether or not ``call_id`` exists. Whether the call has ended is the
    route's check, once it has the call."""
    presented = bearer(request)
    session_id = request.cookies.get(SESSION_COOKIE)
    if presented is None and session_id and runtime.sessions is not None:
        if await runtime.sessions.get(session_id) is not None:
            return CallReader(call_id, admin=True)
        raise AuthError("session: expired or signed out; sign in again on the monitor")
    if presented is None:
        raise AuthError(
            "authorization: send the call's read_token (from POST /api/calls) or the admin "
            "API key as `Authorization: Bearer <token>`, or sign in to the monitor"
        )
    if is_admin_key(settings, presented):
        return CallReader(call_id, admin=True)
    landing.read_tokens.verify(presented, call_id, time.time())
    return CallReader(call_id, admin=False)


AdminDep = Annotated[Admin, Depends(require_admin)]
CallReaderDep = Annotated[CallReader, Depends(call_reader)]


def ensure_admin_key(settings: Settings) -> tuple[Settings, Path | None]:
    """``settings`` with an admin API key. When none is set: in dev, the key in
    ``data_dir/admin-api-key``, generated there (mode 0600) the first time, and
    that file's path; in prod, ConfigError."""
    if settings.admin_api_key is not None:
        return settings, None
    if settings.env != "dev":
        raise ConfigError(
            "admin_api_key: required when env=prod (it guards the monitor API and "
            "transcripts); set VOXFLEET_ADMIN_API_KEY or VOXFLEET_ADMIN_API_KEY_FILE"
        )
    path = settings.data_dir / ADMIN_KEY_FILE
    try:
        key = path.read_text(encoding="utf-8").strip() if path.exists() else ""
        if len(key) < ADMIN_KEY_MIN_LENGTH:
            key = secrets.token_urlsafe(32)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(key + "\n")
            log.info("admin api key generated", path=str(path))
    except OSError as e:
        raise ConfigError(f"admin_api_key: cannot keep a generated key in {path}: {e}") from e
    return settings.model_copy(update={"admin_api_key": SecretStr(key)}), path
