"""One exception hierarchy for voxfleet.

Every error carries a stable machine-readable ``code`` (it travels to clients in
``error`` messages and HTTP bodies) and a ``retryable`` flag that callers use to
decide between retrying and giving up. Library errors are wrapped at the edge.
"""

from __future__ import annotations


class VoxfleetError(Exception):
    code = "internal"
    retryable = False

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class ConfigError(VoxfleetError):
    code = "config"


class ProtocolError(VoxfleetError):
    """A client broke the wire protocol; the message names what was wrong."""

    code = "protocol"


class AuthError(VoxfleetError):
    """No credentials, or credentials that prove nothing (HTTP 401)."""

    code = "unauthorized"


class Forbidden(AuthError):
    """Valid credentials for something else, e.g. a token of another call (HTTP 403)."""

    code = "forbidden"


class NotFound(VoxfleetError):
    code = "not_found"


class InvalidRequest(VoxfleetError):
    """Bad input from outside: the message names the field, ``field`` too when
    there is one."""

    code = "invalid_request"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message, code=code)
        self.field = field


class MalformedRequest(InvalidRequest):
    """Input that cannot even be parsed (HTTP 400), e.g. a body that is not JSON."""

    code = "malformed"


class BodyTooLarge(InvalidRequest):
    code = "body_too_large"


class UnsupportedMediaType(InvalidRequest):
    code = "unsupported_media_type"


class Refused(VoxfleetError):
    """Not now: the client may try again after ``retry_after`` seconds."""

    retryable = True

    def __init__(self, message: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class RateLimited(Refused):
    """This client asked too often (HTTP 429)."""

    code = "rate_limited"


class QueueFull(Refused):
    """Too many calls already wait for an agent: the service, not the client,
    is short (HTTP 503)."""

    code = "queue_full"


class ProviderError(VoxfleetError):
    """A speech or language provider failed."""

    code = "provider"


class ProviderTimeout(ProviderError):
    code = "provider_timeout"
    retryable = True


class ProviderUnavailable(ProviderError):
    code = "provider_unavailable"
    retryable = True


class StoreUnavailable(VoxfleetError):
    code = "store_unavailable"
    retryable = True


class MalformedMessage(VoxfleetError):
    """A message on the bus could not be decoded (a bug or a version skew)."""

    code = "malformed_message"


class BusUnavailable(VoxfleetError):
    code = "bus_unavailable"
    retryable = True


class DispatchUnavailable(VoxfleetError):
    code = "dispatch_unavailable"
    retryable = True


class LeaseLost(VoxfleetError):
    """The lease moved to another agent (or lapsed): stop serving the room."""

    code = "lease_lost"


class RoomEnded(VoxfleetError):
    """The call behind the room is over: whoever holds the room leaves it."""

    code = "room_ended"
