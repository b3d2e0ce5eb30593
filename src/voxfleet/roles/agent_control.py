"""Operators' requests to one agent, over the bus: today only ``drain``. The
monitor publishes on the agent's control topic; the agent, subscribed from
start-up, runs the drain its SIGTERM runs (stop claiming, hand rooms over)
but keeps running, not ready, until its orchestrator replaces or removes it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal

from pydantic import BaseModel, ValidationError

from voxfleet.bus.base import Subscription
from voxfleet.observability.logging import get_logger

log = get_logger(__name__)


class DrainRequest(BaseModel):
    type: Literal["drain"] = "drain"
    by: str


def agent_control(agent_id: str) -> str:
    """Monitor -> one agent: operators' requests."""
    return f"agent:{agent_id}:control"


async def obey_drain_requests(
    subscription: Subscription, agent_id: str, drain: Callable[[], Awaitable[None]]
) -> None:
    """Drain once asked to, then stop listening; bad messages are logged and skipped."""
    async with subscription:
        async for raw in subscription:
            try:
                request = DrainRequest.model_validate_json(raw)
            except ValidationError:
                log.warning("agent control message ignored", agent_id=agent_id)
                continue
            log.info("drain requested", agent_id=agent_id, by=request.by)
            await drain()
            return
