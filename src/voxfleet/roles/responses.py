"""The one error shape of the HTTP API (docs/protocol.md) and the status each
error class maps to. Routes raise VoxfleetError subclasses; the handler here
turns them into ``{"error": {"code", "message", "field"?}}`` responses, and the
middleware answers with the same shape."""

from __future__ import annotations

from fastapi.responses import JSONResponse
from starlette.requests import HTTPConnection

from voxfleet.errors import (
    AuthError,
    BodyTooLarge,
    Conflict,
    Forbidden,
    InvalidRequest,
    MalformedRequest,
    NotFound,
    QueueFull,
    RateLimited,
    Refused,
    UnsupportedMediaType,
    VoxfleetError,
)
from voxfleet.observability.logging import get_logger

log = get_logger(__name__)
ECHO_CHARS = 64  # longest piece of client input repeated in an error message

# Most specific first: the first class an error is an instance of decides.
_STATUS: tuple[tuple[type[VoxfleetError], int], ...] = (
    (Forbidden, 403),
    (AuthError, 401),
    (NotFound, 404),
    (MalformedRequest, 400),
    (Conflict, 409),
    (BodyTooLarge, 413),
    (UnsupportedMediaType, 415),
    (InvalidRequest, 422),
    (RateLimited, 429),
    (QueueFull, 503),
)


def clip(text: str, limit: int = ECHO_CHARS) -> str:
    """``text`` cut to ``limit`` characters: error messages name what was wrong
    without echoing a megabyte back."""
    return text if len(text) <= limit else f"{text[: limit - 5]}...{text[-2:]}"


def shorten(value: object, limit: int = ECHO_CHARS) -> str:
    """``repr`` of client input, clipped."""
    return clip(repr(value), limit)


def error_response(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, object] = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def status_of(error: VoxfleetError) -> int:
    for cls, status in _STATUS:
        if isinstance(error, cls):
            return status
    return 503 if error.retryable else 500


def response_for(error: VoxfleetError) -> JSONResponse:
    headers: dict[str, str] = {}
    if isinstance(error, AuthError) and not isinstance(error, Forbidden):
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(error, Refused):
        headers["Retry-After"] = str(error.retry_after)
    field = error.field if isinstance(error, InvalidRequest) else None
    status = status_of(error)
    message = error.message
    if status == 500:  # not the client's doing: say so without the internals
        log.error("request failed", code=error.code, error=repr(error))
        message = "internal error; the server's log has the details"
    return error_response(status, error.code, message, field, headers)


async def handle_voxfleet_error(conn: HTTPConnection, error: Exception) -> JSONResponse:
    """The app's handler for VoxfleetError. Socket routes handle their own
    errors (close codes); one that escapes them is re-raised, to be logged."""
    if not isinstance(error, VoxfleetError) or conn.scope["type"] != "http":
        raise error
    return response_for(error)
