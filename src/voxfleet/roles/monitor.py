"""The monitor role's JSON API: the scaling signal for the autoscaler (KEDA's
metrics-api scaler or an HPA on the Prometheus gauge), live agents and rooms,
who serves them, stored calls, and the monitor's users.

Nothing here is open: a signed-in user (roles/signin.py) or the admin API key
reads; only an admin changes; ``/api/scaling`` also takes the scaling token.
`voxfleet monitor` serves them on its port; `voxfleet up` on its admin
listener, never on the public one."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from voxfleet.dispatch.base import AgentInfo
from voxfleet.dispatch.scaling import ScalingSignal, scaling_signal
from voxfleet.observability.logging import get_logger
from voxfleet.roles.api_models import CallOut, error_responses
from voxfleet.roles.deps import BackendsDep, RuntimeDep, SettingsDep, StoreDep, stored_call
from voxfleet.roles.monitor_auth import MonitorAdminDep, MonitorUserDep, ScalingReaderDep
from voxfleet.roles.signin import accounts_of, json_body, json_body_doc
from voxfleet.store.users import UserRole

log = get_logger(__name__)
router = APIRouter(prefix="/api", responses=error_responses(401, 403))
# Served only where the landing's own GET /api/calls/{id} is not (the admin listener).
calls_router = APIRouter(prefix="/api", responses=error_responses(401, 403))


@router.get("/scaling")
async def scaling(_who: ScalingReaderDep, b: BackendsDep, settings: SettingsDep) -> ScalingSignal:
    return await scaling_signal(b.registry, b.directory, b.queue, settings)


class AgentsOut(BaseModel):
    agents: list[AgentInfo]


class RoomOut(BaseModel):
    room_id: str
    agent_id: str | None


class RoomsOut(BaseModel):
    rooms: list[RoomOut]


@router.get("/agents")
async def agents(_who: MonitorUserDep, b: BackendsDep) -> AgentsOut:
    found = await b.registry.agents()
    return AgentsOut(agents=sorted(found, key=lambda a: a.agent_id))


@router.get("/rooms")
async def rooms(_who: MonitorUserDep, b: BackendsDep) -> RoomsOut:
    served = await b.directory.rooms()
    return RoomsOut(
        rooms=[RoomOut(room_id=r, agent_id=a or None) for r, a in sorted(served.items())]
    )


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    role: UserRole = UserRole.VIEWER


class UserOut(BaseModel):
    name: str
    role: UserRole
    created_at: datetime


@router.post(
    "/users",
    status_code=201,
    responses=error_responses(409, 415, 422),
    openapi_extra=json_body_doc(NewUser),
)
async def add_user(request: Request, who: MonitorAdminDep, runtime: RuntimeDep) -> UserOut:
    """Admins only: another monitor user (a viewer unless ``role`` says admin)."""
    accounts, _limiter = accounts_of(runtime)
    body = await json_body(request, NewUser)
    user = await accounts.add(body.name, body.password, body.role)
    log.info("monitor user added", user=user.name, role=user.role.value, by=who.name)
    return UserOut(
        name=user.name, role=user.role, created_at=datetime.fromtimestamp(user.created_at, UTC)
    )


@calls_router.get("/calls/{call_id}", responses=error_responses(404))
async def get_call(call_id: str, _who: MonitorUserDep, store: StoreDep) -> CallOut:
    call = await stored_call(store, call_id)
    return CallOut.of(call)
