"""An agent keeps its pod's deletion cost equal to the rooms it serves, through
the Kubernetes API: checked against a local stand-in API server that speaks
the same HTTP (PATCH of a pod with a JSON merge patch, bearer token), with
lightkube, the client the agent uses in its pod."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from lightkube import AsyncClient, KubeConfig
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.server import free_port
from voxfleet.roles.pod_cost import ANNOTATION, PodDeletionCost

pytestmark = pytest.mark.integration
TOKEN = "service-account-token"


class StandInApi:
    """The part of the Kubernetes API the agent calls, recording each call."""

    def __init__(self) -> None:
        self.patches: list[dict[str, Any]] = []
        self.failing = 0  # answer this many requests with 503 first
        self.port = free_port()
        self.app = Starlette(
            routes=[Route("/api/v1/namespaces/{ns}/pods/{name}", self.pod, methods=["PATCH"])]
        )

    async def pod(self, request: Request) -> JSONResponse:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return JSONResponse({"kind": "Status", "code": 401}, 401)
        if self.failing:
            self.failing -= 1
            return JSONResponse({"kind": "Status", "code": 503, "message": "busy"}, 503)
        self.patches.append(
            {
                "path": request.url.path,
                "content_type": request.headers.get("content-type"),
                "body": json.loads(await request.body()),
            }
        )
        name, ns = request.path_params["name"], request.path_params["ns"]
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns}}
        return JSONResponse(pod)

    def costs(self) -> list[str]:
        return [p["body"]["metadata"]["annotations"][ANNOTATION] for p in self.patches]


@pytest.fixture
async def api() -> AsyncIterator[StandInApi]:
    stand_in = StandInApi()
    server = uvicorn.Server(
        uvicorn.Config(stand_in.app, host="127.0.0.1", port=stand_in.port, log_config=None)
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag
        await asyncio.sleep(0.01)
    yield stand_in
    server.should_exit = True
    await task


def _client(api: StandInApi) -> AsyncClient:
    config = KubeConfig.from_dict(
        {
            "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{api.port}"}}],
            "users": [{"name": "agent", "user": {"token": TOKEN}}],
            "contexts": [{"name": "c", "context": {"cluster": "c", "user": "agent"}}],
            "current-context": "c",
        }
    )
    return AsyncClient(config=config)


async def _until(predicate: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110 - polls what the stand-in recorded
            await asyncio.sleep(0.01)


async def test_the_pod_cost_follows_the_rooms_served(api: StandInApi) -> None:
    rooms = [0]
    cost = PodDeletionCost("agent-7d9", "voxfleet", client=lambda: _client(api))
    task = asyncio.create_task(cost.run(lambda: rooms[0], every=0.02))
    try:
        await _until(lambda: api.costs() == ["0"])
        rooms[0] = 3
        await _until(lambda: api.costs() == ["0", "3"])
        await asyncio.sleep(0.1)  # no change, no patch
        assert api.costs() == ["0", "3"]
        api.failing = 2  # the API blinks: the change is sent once it answers
        rooms[0] = 1
        await _until(lambda: api.costs() == ["0", "3", "1"])
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    first = api.patches[0]
    assert first["path"] == "/api/v1/namespaces/voxfleet/pods/agent-7d9"
    assert first["content_type"] == "application/merge-patch+json"
