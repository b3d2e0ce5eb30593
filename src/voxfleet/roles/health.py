"""Probes and metrics every role serves: ``/livez`` (the process runs),
``/readyz`` (it should get traffic: models warm, not draining, Redis reachable)
and Prometheus ``/metrics``."""

from __future__ import annotations

import contextlib

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from voxfleet.dispatch.scaling import scaling_signal
from voxfleet.errors import VoxfleetError
from voxfleet.roles.deps import RuntimeDep
from voxfleet.roles.runtime import Role

router = APIRouter(include_in_schema=False)


@router.get("/livez")
async def livez() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    ready, reason = await runtime.readiness()
    if ready:
        return JSONResponse({"status": "ready"})
    return JSONResponse({"status": "not ready", "reason": reason}, 503)


@router.get("/metrics")
async def metrics(runtime: RuntimeDep) -> Response:
    if Role.MONITOR in runtime.roles:
        b = runtime.backends
        with contextlib.suppress(VoxfleetError):  # fresh gauges for every scrape
            await scaling_signal(b.registry, b.directory, b.queue, runtime.settings)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
