"""Who is asking the monitor: a signed-in user (the session cookie, plus the
``X-CSRF-Token`` header on anything that changes state), the admin API key
(automation, tests), on ``/api/scaling`` only the scaling token (KEDA), or,
when ``trusted_user_header`` is set, the user an authenticating proxy (an
OIDC proxy such as oauth2-proxy) names in that header. Anyone else gets 401.
Routes ask for one of the ``Annotated`` aliases below.

CSRF is a double submit bound to the session: the token is issued at sign-in,
kept with the session server-side, and must come back in a header, which a
cross-site form cannot set. SameSite=Strict on the cookie is the second lock."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Request

from voxfleet.errors import AuthError, ConfigError, Forbidden
from voxfleet.roles.auth import bearer, is_admin_key
from voxfleet.roles.deps import RuntimeDep
from voxfleet.roles.sessions import SESSION_COOKIE, SessionStore
from voxfleet.settings import Settings
from voxfleet.store.users import UserRole

CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ANONYMOUS = (
    "authorization: sign in (POST /api/session) or send the admin API key as "
    "`Authorization: Bearer <key>`"
)


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: UserRole
    via: Literal["session", "admin_key", "scaling_token", "proxy"]
    session_id: str | None = None
    csrf: str | None = None


def is_scaling_token(settings: Settings, presented: str) -> bool:
    token = settings.scaling_token
    return token is not None and hmac.compare_digest(
        presented.encode(), token.get_secret_value().encode()
    )


def sessions_of(runtime: RuntimeDep) -> SessionStore:
    if runtime.sessions is None:
        raise ConfigError("this process keeps no sign-in sessions (it plays no monitor role)")
    return runtime.sessions


async def from_cookie(request: Request, sessions: SessionStore) -> Principal | None:
    """The signed-in user of the session cookie; None without one; AuthError
    when it names no live session."""
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id:
        return None
    session = await sessions.get(session_id)
    if session is None:
        raise AuthError("session: expired or signed out; sign in again with POST /api/session")
    return Principal(session.user, session.role, "session", session_id, session.csrf)


def proxy_csrf(settings: Settings, name: str) -> str:
    """A proxy-authenticated user's CSRF token: no session to keep it in, so it
    is derived from the user name with the secret key (GET /api/session hands
    it to the page; another site cannot read that answer)."""
    key = settings.secret_key.get_secret_value().encode()
    return hmac.new(key, f"monitor-csrf:{name}".encode(), hashlib.sha256).hexdigest()


def from_proxy(request: Request, settings: Settings) -> Principal | None:
    """The user the authenticating proxy names, when the monitor trusts one."""
    header = settings.trusted_user_header
    name = request.headers.get(header, "").strip() if header else ""
    if not header or not name:
        return None
    if len(name) > 256 or not name.isprintable():
        raise AuthError(f"{header}: not a user name")
    admins = {a.strip() for a in settings.trusted_admins.split(",") if a.strip()}
    role = UserRole.ADMIN if name in admins else UserRole.VIEWER
    return Principal(name, role, "proxy", csrf=proxy_csrf(settings, name))


def check_csrf(request: Request, principal: Principal) -> None:
    if principal.via not in ("session", "proxy") or request.method in SAFE_METHODS:
        return
    presented = request.headers.get(CSRF_HEADER)
    if not presented:
        raise Forbidden(
            f"{CSRF_HEADER}: missing; send the csrf_token that POST /api/session returned",
            code="csrf",
        )
    expected = (principal.csrf or "").encode()
    if not expected or not hmac.compare_digest(presented.encode(), expected):
        raise Forbidden(f"{CSRF_HEADER}: does not match this session's csrf_token", code="csrf")


async def resolve(request: Request, runtime: RuntimeDep, scaling: bool = False) -> Principal:
    presented = bearer(request)
    if presented is not None:
        if is_admin_key(runtime.settings, presented):
            return Principal("admin-api-key", UserRole.ADMIN, "admin_key")
        if scaling and is_scaling_token(runtime.settings, presented):
            return Principal("scaling-token", UserRole.VIEWER, "scaling_token")
        what = "the admin API key nor the scaling token" if scaling else "the admin API key"
        raise AuthError(f"authorization: not {what}")
    principal = from_proxy(request, runtime.settings) or await from_cookie(
        request, sessions_of(runtime)
    )
    if principal is None:
        raise AuthError(ANONYMOUS)
    check_csrf(request, principal)
    return principal


async def monitor_user(request: Request, runtime: RuntimeDep) -> Principal:
    """A viewer or an admin (signed in, or the admin API key)."""
    return await resolve(request, runtime)


async def monitor_admin(request: Request, runtime: RuntimeDep) -> Principal:
    principal = await resolve(request, runtime)
    if principal.role != UserRole.ADMIN:
        raise Forbidden(
            f"role: this needs an admin; {principal.name!r} is a {principal.role.value}",
            code="forbidden",
        )
    return principal


async def scaling_reader(request: Request, runtime: RuntimeDep) -> Principal:
    """A monitor user, or the scaling token (this route only)."""
    return await resolve(request, runtime, scaling=True)


MonitorUserDep = Annotated[Principal, Depends(monitor_user)]
MonitorAdminDep = Annotated[Principal, Depends(monitor_admin)]
ScalingReaderDep = Annotated[Principal, Depends(scaling_reader)]
