"""Pure ASGI middleware of the web roles: what every request and socket passes
before any route sees it. Pure ASGI (not BaseHTTPMiddleware) so WebSocket
scopes and contextvars pass through untouched.

- ``BodyLimit``: request bodies over a cap get 413, whether the client sent a
  Content-Length or streamed the body without one.
- ``SecurityHeaders``: a Content-Security-Policy the landing page works under,
  and the usual headers, on every HTTP response.
- ``OriginCheck``: a browser's socket handshake from an origin not allowed is
  refused before the socket is accepted (the server answers 403)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voxfleet.errors import BodyTooLarge
from voxfleet.observability.logging import get_logger
from voxfleet.observability.metrics import HTTP_REFUSED
from voxfleet.roles.responses import response_for, shorten

log = get_logger(__name__)

_DEFAULT_PORTS = {"http": "80", "https": "443", "ws": "80", "wss": "443"}
_HOST = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$")
CLOSE_POLICY_VIOLATION = 1008


def normalize_origin(origin: str) -> str | None:
    """``scheme://host[:port]`` in lower case without a default port; None if
    ``origin`` is not an http(s) origin (``null``, garbage)."""
    parts = urlsplit(origin.strip().lower())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return f"{parts.scheme}://{_strip_default_port(parts.netloc, parts.scheme)}"


def _strip_default_port(netloc: str, scheme: str) -> str:
    return netloc.removesuffix(f":{_DEFAULT_PORTS[scheme]}")


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> BodyTooLarge:
        HTTP_REFUSED.labels("body_too_large").inc()
        return BodyTooLarge(f"body: larger than {self.max_bytes} bytes")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await response_for(self._too_large())(scope, receive, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise self._too_large()
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except BodyTooLarge as e:  # a reader without an exception handler
            if started:
                raise
            await response_for(e)(scope, receive, send)


class SecurityHeaders:
    """``public_origin``: where media sockets may also go (VOXFLEET_PUBLIC_URL).
    ``livekit_url``: the LiveKit server the page joins rooms on (its signalling
    socket, and the HTTP requests livekit-client makes to it), when that is the
    transport. ``exempt``: paths served without a CSP (the API docs pages, when
    enabled, load their scripts from a CDN)."""

    HEADERS = (
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("Permissions-Policy", "microphone=(self), camera=(), geolocation=(), usb=()"),
        ("X-Frame-Options", "DENY"),
        ("Cross-Origin-Opener-Policy", "same-origin"),
    )

    def __init__(
        self,
        app: ASGIApp,
        public_origin: str | None,
        exempt: Iterable[str] = (),
        livekit_url: str | None = None,
    ) -> None:
        self.app = app
        self.exempt = frozenset(exempt)
        self._public_sockets = ""
        if public_origin is not None:
            parts = urlsplit(public_origin)
            scheme = "wss" if parts.scheme == "https" else "ws"
            self._public_sockets = f" {scheme}://{parts.netloc}"
        if livekit_url is not None:
            parts = urlsplit(livekit_url)
            secure = parts.scheme in ("wss", "https")
            self._public_sockets += (
                f" {'wss' if secure else 'ws'}://{parts.netloc}"
                f" {'https' if secure else 'http'}://{parts.netloc}"
            )

    def policy(self, host: str | None) -> str:
        """The page's CSP. ``connect-src`` names the socket origins explicitly
        (the page upgrades ws: to wss: behind a TLS proxy; older browsers do
        not count ws: as 'self')."""
        sockets = self._public_sockets
        if host is not None and _HOST.match(host):
            sockets += f" ws://{host} wss://{host}"
        return (
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"connect-src 'self'{sockets}; media-src 'self'; object-src 'none'; "
            "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = None
        if scope["path"] not in self.exempt:
            csp = self.policy(Headers(scope=scope).get("host"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.HEADERS:
                    headers[name] = value
                if csp is not None:
                    headers["Content-Security-Policy"] = csp
            await send(message)

        await self.app(scope, receive, send_with_headers)


class OriginCheck:
    """Sockets from a browser (they carry ``Origin``) must come from an allowed
    origin: ``allowed`` if given (``*``: any), else ``public_origin`` if set,
    else the socket's own host (same-origin). No ``Origin`` header means no
    browser (CallClient, a telephony bridge): allowed; the media token is what
    admits those."""

    def __init__(self, app: ASGIApp, allowed: Iterable[str], public_origin: str | None) -> None:
        self.app = app
        given = tuple(allowed)
        self.any = "*" in given
        self.allowed = frozenset(o for a in given if (o := normalize_origin(a)) is not None)
        self.public = normalize_origin(public_origin) if public_origin else None

    def admits(self, origin: str, host: str | None) -> bool:
        if self.any:
            return True
        normal = normalize_origin(origin)
        if normal is None:
            return False
        if self.allowed:
            return normal in self.allowed
        if self.public is not None:
            return normal == self.public
        if host is None:
            return False
        scheme, _, netloc = normal.partition("://")
        return netloc == _strip_default_port(host.lower(), scheme)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is None or self.admits(origin, headers.get("host")):
            await self.app(scope, receive, send)
            return
        HTTP_REFUSED.labels("origin").inc()
        log.info("socket refused", reason="origin", origin=shorten(origin))
        await receive()  # websocket.connect
        await send({"type": "websocket.close", "code": CLOSE_POLICY_VIOLATION, "reason": ""})
