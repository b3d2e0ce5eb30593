"""Reading a real app's /metrics: samples by name and labels, and the names a
call leaves there (what dashboards and alert rules may query)."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.calls import greeted_call, turn
from tests.support.server import app_server

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    """Every sample of an exposition, keyed by (name, labels)."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, frozenset(labels.items())), 0.0)


async def scrape(base: str) -> str:
    async with httpx.AsyncClient() as http:
        return (await http.get(f"{base}/metrics")).text


async def metrics_around_a_call(tmp_path: Path, turns: int = 2) -> tuple[str, str]:
    """/metrics of a whole app (every role) before and after a greeted call
    with ``turns`` turns of the caller's scripted speech."""
    async with app_server(tmp_path, agent_capacity=3) as (base, _runtime):
        before = await scrape(base)
        call = await greeted_call(base)
        try:
            for i in range(turns):
                await turn(call, 0.6 + 0.2 * i, seq=1 + 2 * i)
        finally:
            await call.end()
            await call.closed()
        return before, await scrape(base)
