"""The monitor role's JSON API: the scaling signal for the autoscaler (KEDA's
metrics-api scaler or an HPA on the Prometheus gauge), live agents and rooms,
and recent calls. The dashboard builds on it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from voxfleet.dispatch.scaling import ScalingSignal, desired_agents
from voxfleet.observability.metrics import (
    ACTIVE_ROOMS_TOTAL,
    DESIRED_AGENTS,
    LIVE_AGENTS,
    QUEUE_DEPTH,
)
from voxfleet.roles.health import RuntimeDep

router = APIRouter(prefix="/api")


@router.get("/scaling")
async def scaling(runtime: RuntimeDep) -> ScalingSignal:
    b, s = runtime.backends, runtime.settings
    agents = await b.registry.agents()
    rooms = await b.directory.rooms()
    queued = await b.queue.depth()
    live = [a for a in agents if not a.draining]
    capacity = max((a.capacity for a in live), default=s.agent_capacity)
    signal = ScalingSignal(
        active_rooms=len(rooms),
        queued_rooms=queued,
        live_agents=len(agents),
        ready_agents=sum(1 for a in agents if a.ready),
        draining_agents=sum(1 for a in agents if a.draining),
        capacity_per_agent=capacity,
        free_capacity=sum(max(0, a.capacity - a.active) for a in live if a.ready),
        warm_buffer=s.scaling_warm_buffer,
        min_agents=s.scaling_min_agents,
        max_agents=s.scaling_max_agents,
        desired_agents=desired_agents(
            len(rooms),
            queued,
            capacity,
            s.scaling_warm_buffer,
            s.scaling_min_agents,
            s.scaling_max_agents,
        ),
    )
    DESIRED_AGENTS.set(signal.desired_agents)
    LIVE_AGENTS.set(signal.live_agents)
    ACTIVE_ROOMS_TOTAL.set(signal.active_rooms)
    QUEUE_DEPTH.set(queued)
    return signal


@router.get("/agents")
async def agents(runtime: RuntimeDep) -> dict[str, Any]:
    found = await runtime.backends.registry.agents()
    return {"agents": [a.model_dump() for a in sorted(found, key=lambda a: a.agent_id)]}


@router.get("/rooms")
async def rooms(runtime: RuntimeDep) -> dict[str, Any]:
    served = await runtime.backends.directory.rooms()
    return {"rooms": [{"room_id": r, "agent_id": a or None} for r, a in sorted(served.items())]}
