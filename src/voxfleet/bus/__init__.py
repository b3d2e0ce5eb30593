"""The bus: topics that carry a room's audio and messages between the media edge
and whichever agent serves the room. In-process for ``voxfleet up``; Redis when
roles run as separate processes."""

from voxfleet.bus.base import Bus, Subscription
from voxfleet.bus.memory import InProcessBus

__all__ = ["Bus", "InProcessBus", "Subscription"]
