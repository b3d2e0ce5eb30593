"""What an admin does from the monitor: end a live call, drain an agent. Both
need the admin role (and the session's CSRF token), and both are logged with
who asked.

Ending a call is what the LiveKit landing does when its room goes: record the
end (``operator_ended``; the first recorded end stays), tell the room's agent
on the room's up topic (it tells the caller's edge, which ends the caller's
socket), then tombstone the room so that no agent takes it again."""

from __future__ import annotations

import time

from fastapi import APIRouter
from pydantic import BaseModel

from voxfleet.bus.base import room_up
from voxfleet.domain.calls import EndReason
from voxfleet.errors import Conflict, NotFound
from voxfleet.messages.room import Hangup, encode, encode_numbered
from voxfleet.observability.logging import get_logger
from voxfleet.observability.metrics import CALLS_ENDED
from voxfleet.roles.agent_control import DrainRequest, agent_control
from voxfleet.roles.api_models import error_responses
from voxfleet.roles.deps import BackendsDep, StoreDep, stored_call
from voxfleet.roles.monitor_auth import MonitorAdminDep
from voxfleet.roles.responses import shorten
from voxfleet.transport.bus_link import new_epoch

log = get_logger(__name__)
router = APIRouter(prefix="/api", responses=error_responses(401, 403, 404, 409))


class CallEnded(BaseModel):
    call_id: str
    end_reason: EndReason


class DrainAsked(BaseModel):
    agent_id: str
    draining: bool


@router.post("/calls/{call_id}/end")
async def end_call(
    call_id: str, who: MonitorAdminDep, store: StoreDep, b: BackendsDep
) -> CallEnded:
    await stored_call(store, call_id)  # NotFound for no such call
    if not await store.end_call(call_id, EndReason.OPERATOR_ENDED, time.time()):
        raise Conflict(f"call: {call_id} has already ended", field="call_id")
    CALLS_ENDED.labels(EndReason.OPERATOR_ENDED.value).inc()
    log.info("call ended by operator", call_id=call_id, user=who.name)
    # A fresh epoch: the agent's inbox takes a newer producer from its first message.
    hangup = Hangup(reason=EndReason.OPERATOR_ENDED.value)
    await b.bus.publish(room_up(call_id), encode_numbered(new_epoch(), 1, encode(hangup)))
    await b.directory.end_room(call_id)
    return CallEnded(call_id=call_id, end_reason=EndReason.OPERATOR_ENDED)


@router.post("/agents/{agent_id}/drain", status_code=202)
async def drain_agent(agent_id: str, who: MonitorAdminDep, b: BackendsDep) -> DrainAsked:
    agents = {a.agent_id: a for a in await b.registry.agents()}
    agent = agents.get(agent_id)
    if agent is None:
        raise NotFound(f"agent: no live agent with id {shorten(agent_id)}")
    if not agent.draining:
        await b.bus.publish(
            agent_control(agent_id), DrainRequest(by=who.name).model_dump_json().encode()
        )
    log.info("agent drain requested", agent_id=agent_id, user=who.name)
    return DrainAsked(agent_id=agent_id, draining=True)
