"""One exception hierarchy for voxfleet.

Every error carries a stable machine-readable ``code`` (it travels to clients in
``error`` messages and HTTP bodies) and a ``retryable`` flag that callers use to
decide between retrying and giving up. Library errors are wrapped at the edge.
A subclass sets its code and flag in its class statement:
``class NotFound(VoxfleetError, code="not_found")``.
"""

from __future__ import annotations


class VoxfleetError(Exception):
    code = "internal"
    retryable = False

    def __init_subclass__(
        cls, code: str | None = None, retryable: bool | None = None, **kwargs: object
    ) -> None:
        super().__init_subclass__(**kwargs)
        if code is not None:
            cls.code = code
        if retryable is not None:
            cls.retryable = retryable

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


# -- what a process is given --------------------------------------------------------


class ConfigError(VoxfleetError, code="config"):
    """A setting, profile file or secret is wrong; the message names it. The
    process stops at start-up rather than run half-configured."""


# -- what clients send ---------------------------------------------------------------


class ProtocolError(VoxfleetError, code="protocol"):
    """A client broke the media socket's protocol (docs/protocol.md)."""


class AuthError(VoxfleetError, code="unauthorized"):
    """No credentials, or credentials that prove nothing (HTTP 401)."""


class Forbidden(AuthError, code="forbidden"):
    """Valid credentials for something else, e.g. a token of another call (HTTP 403)."""


class NotFound(VoxfleetError, code="not_found"):
    """No such call, or an id that cannot be one (HTTP 404)."""


class InvalidRequest(VoxfleetError, code="invalid_request"):
    """Bad input from outside: the message names the field, ``field`` too when
    there is one."""

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message, code=code)
        self.field = field


class MalformedRequest(InvalidRequest, code="malformed"):
    """Input that cannot even be parsed (HTTP 400), e.g. a body that is not JSON."""


class Conflict(InvalidRequest, code="conflict"):
    """The thing to create already exists, e.g. a user name taken (HTTP 409)."""


class BodyTooLarge(InvalidRequest, code="body_too_large"):
    """Over VOXFLEET_MAX_BODY_BYTES (HTTP 413); not read further."""


class UnsupportedMediaType(InvalidRequest, code="unsupported_media_type"):
    """A body that is not ``application/json`` (HTTP 415)."""


class Refused(VoxfleetError, retryable=True):
    """Not now: the client may try again after ``retry_after`` seconds."""

    def __init__(self, message: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class RateLimited(Refused, code="rate_limited"):
    """This client asked too often (HTTP 429)."""


class QueueFull(Refused, code="queue_full"):
    """Too many calls already wait for an agent: the service, not the client,
    is short (HTTP 503)."""


# -- what the servers run on ---------------------------------------------------------


class ProviderError(VoxfleetError, code="provider"):
    """A speech or language provider failed; the call goes on."""


class ProviderTimeout(ProviderError, code="provider_timeout", retryable=True):
    """The provider did not answer within its deadline (for an LLM: its first
    token)."""


class ProviderUnavailable(ProviderError, code="provider_unavailable", retryable=True):
    """Refused, 5xx, 429: the same request may work a moment later, so the
    provider base retries it."""


class Unavailable(VoxfleetError, code="unavailable", retryable=True):
    """A service voxfleet depends on cannot be reached now (a restart, a
    failover, a network blip): the work waits and is tried again."""


class StoreUnavailable(Unavailable, code="store_unavailable"):
    """The database: turns wait in the sink, call ends are recorded later."""


class BusUnavailable(Unavailable, code="bus_unavailable"):
    """Redis pub/sub: numbered streams keep what they could not send."""


class DispatchUnavailable(Unavailable, code="dispatch_unavailable"):
    """Redis for the queue, leases and state: rooms pause until it is back."""


class MalformedMessage(VoxfleetError, code="malformed_message"):
    """A message on the bus could not be decoded (a bug or a version skew);
    it is dropped and logged."""


class LeaseLost(VoxfleetError, code="lease_lost"):
    """The lease moved to another agent: stop serving the room, say nothing."""


class RoomEnded(VoxfleetError, code="room_ended"):
    """The call behind the room is over: whoever holds the room leaves it."""
