"""Admission of new calls, over real HTTP: a per-client rate limit (429), a cap
on queued rooms (503), both with Retry-After and counted in metrics; with
Redis, landing replicas count a client together, and a Redis outage lets calls
through rather than refusing them."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.support.redis_server import RedisServer
from tests.support.server import app_server
from voxfleet.client import CallClient
from voxfleet.roles.runtime import Role

pytestmark = pytest.mark.integration
# Limits are per hour: the sliding window forgives part of the count at a window
# edge, and a burst of requests straddles an hour's edge far more rarely than a minute's.

LANDING = frozenset({Role.LANDING})


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def counted(http: httpx.AsyncClient, name: str) -> float:
    return metric((await http.get("/metrics")).text, name)


async def create(http: httpx.AsyncClient, client: str | None = None) -> httpx.Response:
    headers = {"X-Forwarded-For": client} if client else {}
    return await http.post("/api/calls", json={}, headers=headers)


async def test_one_client_is_limited_and_others_are_not(tmp_path: Path) -> None:
    refused = 'voxfleet_calls_refused_total{reason="rate_limited"}'
    async with (
        app_server(tmp_path, call_rate_limit="3/hour") as (base, _rt),
        httpx.AsyncClient(base_url=base) as http,
    ):
        before = await counted(http, refused)
        assert [(await create(http)).status_code for _ in range(3)] == [201, 201, 201]
        limited = await create(http)
        assert limited.status_code == 429
        assert limited.json()["error"]["code"] == "rate_limited"
        assert "3 per 1 hour" in limited.json()["error"]["message"]
        assert 1 <= int(limited.headers["retry-after"]) <= 3600
        # Behind a trusted proxy (127.0.0.1 by default) the forwarded address is the client.
        assert (await create(http, "203.0.113.7")).status_code == 201
        assert (await create(http, "203.0.113.8")).status_code == 201
        assert await counted(http, refused) - before == 1


async def test_forwarded_addresses_count_only_from_trusted_proxies(tmp_path: Path) -> None:
    async with (
        app_server(tmp_path, call_rate_limit="1/hour", forwarded_allow_ips="192.0.2.1") as (
            base,
            _rt,
        ),
        httpx.AsyncClient(base_url=base) as http,
    ):
        assert (await create(http, "203.0.113.7")).status_code == 201
        assert (await create(http, "203.0.113.8")).status_code == 429  # same peer: 127.0.0.1


async def test_a_full_queue_refuses_new_calls_until_it_drains(tmp_path: Path) -> None:
    refused = 'voxfleet_calls_refused_total{reason="queue_full"}'
    async with (
        app_server(tmp_path, agent_capacity=1, max_queued_rooms=1) as (base, _rt),
        httpx.AsyncClient(base_url=base) as http,
    ):
        before = await counted(http, refused)
        served, waiting = CallClient(base), CallClient(base)
        await served.start()
        await waiting.connect((await waiting.create())["media_url"], wait_ready=False)
        await waiting.wait_for(lambda m: m["type"] == "state" and m["state"] == "queued")
        full = await create(http)
        assert full.status_code == 503
        assert full.json()["error"]["code"] == "queue_full"
        assert full.headers["retry-after"] == "5"
        assert await counted(http, refused) - before == 1
        await served.end()
        await served.close()
        await waiting.wait_for(lambda m: m["type"] == "ready")
        assert (await create(http)).status_code == 201
        await waiting.close()


async def test_replicas_share_a_client_count_in_redis_and_fail_open_without_it(
    tmp_path: Path,
) -> None:
    errors = 'voxfleet_rate_limit_errors_total{check="rate"}'
    with RedisServer() as redis:
        shared = {"redis_url": redis.url, "call_rate_limit": "2/hour", "roles": LANDING}
        async with (
            app_server(tmp_path / "a", **shared) as (first, _a),
            app_server(tmp_path / "b", **shared) as (second, _b),
            httpx.AsyncClient(base_url=first) as one,
            httpx.AsyncClient(base_url=second) as two,
        ):
            assert (await create(one)).status_code == 201
            assert (await create(two)).status_code == 201
            assert (await create(one)).status_code == 429
            assert (await create(two)).status_code == 429
            before = await counted(one, errors)
            redis.stop()
            assert (await create(one)).status_code == 201  # fail open
            assert (await create(two)).status_code == 201
            assert await counted(one, errors) - before == 2
