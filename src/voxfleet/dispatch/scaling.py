"""The scaling signal: how many agent processes the current demand needs.

demand = active + queued rooms; desired = ceil((demand + warm buffer) / rooms
per agent), clamped to [min, max]. Pure, so the monitor's API, its Prometheus
gauge and the tests all compute it the same way."""

from __future__ import annotations

import math

from pydantic import BaseModel


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


def desired_agents(
    active: int, queued: int, capacity: int, warm_buffer: int, minimum: int, maximum: int
) -> int:
    if capacity < 1:
        raise ValueError("capacity: rooms per agent must be at least 1")
    wanted = math.ceil((active + queued + warm_buffer) / capacity)
    return max(minimum, min(maximum, wanted))
