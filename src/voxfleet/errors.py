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
