"""A circuit breaker for one provider of a fallback chain.

Closed: every request goes to the provider. After ``failures`` failures in a
row it opens: requests skip it (the chain goes straight to the next provider,
so a dead endpoint costs callers nothing but the first few deadlines). After
``cooldown`` seconds one request probes it (half-open): a success closes the
breaker, a failure opens it for another cooldown.

Hand-written rather than a library (pybreaker, aiobreaker, circuitbreaker):
those wrap one awaited call, while a streamed reply succeeds at its first piece
and can fail long after, and a request cancelled by a barge-in must count as
neither; here the chain says which happened."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

from voxfleet.observability.logging import get_logger
from voxfleet.observability.metrics import PROVIDER_BREAKER_CHANGES, PROVIDER_BREAKER_STATE

log = get_logger(__name__)

State = Literal["closed", "half_open", "open"]
_GAUGE = {"closed": 0, "half_open": 1, "open": 2}


class Breaker:
    def __init__(
        self,
        kind: str,
        provider: str,
        failures: int = 3,
        cooldown: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kind = kind
        self.provider = provider
        self._threshold = failures
        self._cooldown = cooldown
        self._clock = clock
        self.state: State = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False
        PROVIDER_BREAKER_STATE.labels(kind, provider).set(0)

    def allow(self) -> bool:
        """Whether a request may go to the provider now (and, half-open, takes
        the one probe)."""
        if self.state == "open" and self._clock() - self._opened_at >= self._cooldown:
            self._enter("half_open")
        if self.state == "closed":
            return True
        if self.state == "half_open" and not self._probing:
            self._probing = True
            return True
        return False

    def succeeded(self) -> None:
        self._failures = 0
        self._probing = False
        if self.state != "closed":
            self._enter("closed")

    def failed(self) -> None:
        self._probing = False
        self._failures += 1
        if self.state == "half_open" or self._failures >= self._threshold:
            self._opened_at = self._clock()
            if self.state != "open":
                self._enter("open")

    def abandoned(self) -> None:
        """The request was cancelled (a barge-in): it proves nothing either way."""
        self._probing = False

    def _enter(self, state: State) -> None:
        self.state = state
        PROVIDER_BREAKER_STATE.labels(self.kind, self.provider).set(_GAUGE[state])
        PROVIDER_BREAKER_CHANGES.labels(self.kind, self.provider, state).inc()
        log.warning(
            "provider breaker " + state.replace("_", "-"),
            kind=self.kind,
            provider=self.provider,
            failures=self._failures,
            cooldown=self._cooldown,
        )
