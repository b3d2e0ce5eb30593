"""The scaling signal: how many agent processes the current demand needs.

demand = active + queued rooms; desired = ceil((demand + warm buffer) / rooms
per agent), clamped to [min, max]. Pure, so the monitor's API, its Prometheus
gauge and the tests all compute it the same way.

Rooms per agent is measured where it can be: an agent with local models
reports how busy they were (``model_load``), so one serving ``active`` rooms
at load L could serve ``active * max_load / L`` at its load limit; the signal
uses the mean of that over the agents that serve rooms, within [1, the
configured capacity]. Four rooms that already fill an agent's models thus
ask for a second agent before their callers wait, not after."""

from __future__ import annotations

import math

from pydantic import BaseModel

from voxfleet.dispatch.base import AgentInfo, AgentRegistry, RoomDirectory, RoomQueue
from voxfleet.observability.metrics import (
    ACTIVE_ROOMS_TOTAL,
    DESIRED_AGENTS,
    LIVE_AGENTS,
    QUEUE_DEPTH,
)
from voxfleet.settings import Settings


class ScalingSignal(BaseModel):
    active_rooms: int
    queued_rooms: int
    live_agents: int
    ready_agents: int
    draining_agents: int
    capacity_per_agent: int
    free_capacity: int
    warm_buffer: int
    min_agents: int
    max_agents: int
    desired_agents: int


def measured_capacity(agent: AgentInfo, max_load: float) -> int:
    """Rooms ``agent`` could serve at ``max_load`` by what its rooms cost now."""
    load = agent.model_load
    if not agent.active or not load or load <= 0.0:
        return agent.capacity
    return max(1, min(agent.capacity, math.floor(agent.active * max_load / load)))


def has_room(agent: AgentInfo, max_load: float) -> int:
    """New rooms ``agent`` takes now (none while its models are at the limit)."""
    loaded = agent.active > 0 and (agent.model_load or 0.0) >= max_load
    return 0 if loaded or not agent.ready else max(0, agent.capacity - agent.active)


def desired_agents(
    active: int, queued: int, capacity: int, warm_buffer: int, minimum: int, maximum: int
) -> int:
    if capacity < 1:
        raise ValueError("capacity: rooms per agent must be at least 1")
    wanted = math.ceil((active + queued + warm_buffer) / capacity)
    return max(minimum, min(maximum, wanted))


async def scaling_signal(
    registry: AgentRegistry,
    directory: RoomDirectory,
    queue: RoomQueue,
    settings: Settings,
) -> ScalingSignal:
    """Demand and supply as the monitor sees them; also sets the gauges the
    autoscaler may read instead (KEDA's Prometheus scaler, an HPA)."""
    agents = await registry.agents()
    rooms = await directory.rooms()
    queued = await queue.depth()
    live = [a for a in agents if not a.draining]
    s = settings
    serving = [measured_capacity(a, s.agent_max_model_load) for a in live if a.active]
    configured = max((a.capacity for a in live), default=s.agent_capacity)
    capacity = math.floor(sum(serving) / len(serving)) if serving else configured
    signal = ScalingSignal(
        active_rooms=len(rooms),
        queued_rooms=queued,
        live_agents=len(agents),
        ready_agents=sum(1 for a in agents if a.ready),
        draining_agents=sum(1 for a in agents if a.draining),
        capacity_per_agent=capacity,
        free_capacity=sum(has_room(a, s.agent_max_model_load) for a in live),
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
