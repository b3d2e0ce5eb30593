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
    code = "unauthorized"


class NotFound(VoxfleetError):
    code = "not_found"


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
