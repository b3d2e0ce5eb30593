"""The monitor role's JSON API: the scaling signal for the autoscaler (KEDA's
metrics-api scaler or an HPA on the Prometheus gauge), live agents and rooms,
and who serves them.

Every route needs the admin API key (live room ids lead to transcripts).
`voxfleet monitor` serves them on its port; `voxfleet up` on its admin
listener, never on the public one."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from voxfleet.dispatch.base import AgentInfo
from voxfleet.dispatch.scaling import ScalingSignal, scaling_signal
from voxfleet.roles.auth import require_admin
from voxfleet.roles.deps import BackendsDep, SettingsDep

router = APIRouter(prefix="/api", dependencies=[Depends(require_admin)])


@router.get("/scaling")
async def scaling(b: BackendsDep, settings: SettingsDep) -> ScalingSignal:
    return await scaling_signal(b.registry, b.directory, b.queue, settings)


class AgentsOut(BaseModel):
    agents: list[AgentInfo]


class RoomOut(BaseModel):
    room_id: str
    agent_id: str | None


class RoomsOut(BaseModel):
    rooms: list[RoomOut]


@router.get("/agents")
async def agents(b: BackendsDep) -> AgentsOut:
    found = await b.registry.agents()
    return AgentsOut(agents=sorted(found, key=lambda a: a.agent_id))


@router.get("/rooms")
async def rooms(b: BackendsDep) -> RoomsOut:
    served = await b.directory.rooms()
    return RoomsOut(
        rooms=[RoomOut(room_id=r, agent_id=a or None) for r, a in sorted(served.items())]
    )
