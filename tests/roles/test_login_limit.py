"""The sign-in limit is exact at a window's edge: attempts just before a minute
ends still count just after it, in memory and in a real Redis (the clock the
limit reads is moved by hand; Redis keeps each attempt's time as given)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.support.redis_server import RedisServer
from voxfleet.errors import RateLimited
from voxfleet.roles.login_limit import LoginLimiter
from voxfleet.settings import Settings


@pytest.fixture(params=["memory", "redis"])
def redis_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "memory":
        yield None
        return
    with RedisServer() as redis:
        yield redis.url


async def test_attempts_just_before_a_windows_edge_still_count_after_it(
    tmp_path: Path, redis_url: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    edge = (int(time.time()) // 60 + 1) * 60  # the next whole minute
    clock = SimpleNamespace(now=0.0)
    fake_time = SimpleNamespace(time=lambda: clock.now)
    monkeypatch.setattr("limits.aio.storage.memory.time", fake_time)
    monkeypatch.setattr("limits.aio.storage.redis.redispy.time", fake_time)
    monkeypatch.setattr("voxfleet.roles.login_limit.time", fake_time)
    settings = Settings(
        data_dir=tmp_path,
        redis_url=redis_url,
        login_rate_limit="3/minute",
        _env_file=None,  # type: ignore[call-arg]
    )
    limiter = LoginLimiter(settings)
    try:
        for ago, name in ((0.75, "a"), (0.5, "b"), (0.25, "c")):
            clock.now = edge - ago
            await limiter.check("203.0.113.7", name)
        clock.now = edge + 0.25  # a new minute, half a second after the three attempts
        with pytest.raises(RateLimited) as refused:
            await limiter.check("203.0.113.7", "d")
        assert "address" in str(refused.value)
        assert refused.value.retry_after == 59  # when the oldest attempt is a minute old
        clock.now = edge + 59.5  # it is: one attempt more is allowed, and only one
        await limiter.check("203.0.113.7", "e")
        with pytest.raises(RateLimited):
            await limiter.check("203.0.113.7", "f")
    finally:
        await limiter.close()
