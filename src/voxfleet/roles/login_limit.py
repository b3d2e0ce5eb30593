"""The sign-in rate limit: attempts per client address and, separately, per
user name (so neither one address guessing many names nor many addresses
guessing one name gets far), with the ``limits`` library the call admission
uses. Every attempt counts, good or bad: a correct password is no reason to
allow more guesses. Unlike the admission it uses the library's moving window,
which is exact: the sliding-window counter weighs the previous window by the
time left in it and rounds down, so a burst just after a window's edge got one
attempt more than the limit. A moving window keeps one entry per attempt, at
most the limit's count per address and name. Fails open when Redis cannot
answer (logged), like the admission: argon2's cost still slows guessing, and
admins are not locked out."""

from __future__ import annotations

import asyncio
import math
import time

from limits import RateLimitItem, parse_many
from limits.aio.strategies import MovingWindowRateLimiter

from voxfleet.errors import RateLimited
from voxfleet.observability.logging import get_logger
from voxfleet.roles.admission import CHECK_TIMEOUT, LIMIT_UNAVAILABLE, close_storage, limit_storage
from voxfleet.settings import Settings

log = get_logger(__name__)


class LoginLimiter:
    def __init__(self, settings: Settings) -> None:
        self.limits: list[RateLimitItem] = parse_many(settings.login_rate_limit)
        self._storage, self._pool = limit_storage(settings)
        self._limiter = MovingWindowRateLimiter(self._storage)

    async def check(self, client: str, user: str) -> None:
        """Count one attempt; raise RateLimited when the address or the name is over."""
        for kind, key in (("address", client), ("user", user.lower())):
            for item in self.limits:
                try:
                    async with asyncio.timeout(CHECK_TIMEOUT):
                        if await self._limiter.hit(item, "login", kind, key):
                            continue
                        stats = await self._limiter.get_window_stats(item, "login", kind, key)
                        reset_at = stats[0]
                except LIMIT_UNAVAILABLE as e:
                    log.warning("sign-in rate limit failing open", error=repr(e))
                    return
                retry_after = max(1, math.ceil(reset_at - time.time()))
                log.warning("sign-in refused", reason="rate_limited", by=kind, limit=str(item))
                raise RateLimited(
                    f"sign-in: more than {item} attempts from this {kind}; "
                    f"try again in {retry_after} s",
                    retry_after=retry_after,
                )

    async def close(self) -> None:
        await close_storage(self._storage, self._pool)
