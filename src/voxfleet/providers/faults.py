"""A provider's fault as the reply that suffered it learns of it: counted,
logged with the call's room id (bound by its session), and passed on, so the
reply can apologise at once while the fallback chain asks the next provider."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from voxfleet.errors import ProviderError
from voxfleet.observability.logging import get_logger
from voxfleet.observability.metrics import PROVIDER_ERRORS

log = get_logger(__name__)


@dataclass(slots=True, frozen=True)
class ProviderFault:
    """One failed attempt of one provider, as the reply that made it learns of it."""

    kind: str
    provider: str
    error: ProviderError
    retrying: bool  # the same provider is asked again


OnFault = Callable[[ProviderFault], None]


def report(on_fault: OnFault | None, fault: ProviderFault) -> None:
    """Count and log ``fault`` (the log line carries the call id bound by the
    room's session), and tell the reply."""
    PROVIDER_ERRORS.labels(fault.kind, fault.provider, fault.error.code).inc()
    log.warning(
        "provider fault",
        kind=fault.kind,
        provider=fault.provider,
        code=fault.error.code,
        error=fault.error.message,
        retrying=fault.retrying,
    )
    if on_fault is not None:
        on_fault(fault)
