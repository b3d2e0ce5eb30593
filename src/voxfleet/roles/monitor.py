"""The monitor role's JSON API: the scaling signal for the autoscaler (KEDA's
metrics-api scaler or an HPA on the Prometheus gauge), live agents and rooms,
and recent calls. The dashboard builds on it.

Every route needs the admin API key (live room ids lead to transcripts).
`voxfleet monitor` serves them on its port; `voxfleet up` on its admin
listener, never on the public one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from voxfleet.dispatch.scaling import ScalingSignal
from voxfleet.roles.auth import require_admin
from voxfleet.roles.health import RuntimeDep

router = APIRouter(prefix="/api", dependencies=[Depends(require_admin)])


@router.get("/scaling")
async def scaling(runtime: RuntimeDep) -> ScalingSignal:
    return await runtime.scaling_signal()


@router.get("/agents")
async def agents(runtime: RuntimeDep) -> dict[str, Any]:
    found = await runtime.backends.registry.agents()
    return {"agents": [a.model_dump() for a in sorted(found, key=lambda a: a.agent_id)]}


@router.get("/rooms")
async def rooms(runtime: RuntimeDep) -> dict[str, Any]:
    served = await runtime.backends.directory.rooms()
    return {"rooms": [{"room_id": r, "agent_id": a or None} for r, a in sorted(served.items())]}
