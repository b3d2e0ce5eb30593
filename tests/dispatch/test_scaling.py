"""The scaling signal's arithmetic."""

from __future__ import annotations

import pytest

from voxfleet.dispatch.scaling import desired_agents

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("active", "queued", "capacity", "warm", "expected"),
    [
        (0, 0, 4, 2, 2),  # the floor
        (7, 0, 4, 2, 3),  # ceil(9 / 4)
        (8, 1, 4, 0, 3),  # queued rooms count as demand
        (400, 0, 4, 2, 50),  # the ceiling
        (5, 0, 1, 0, 5),
    ],
)
def test_desired_agents(active: int, queued: int, capacity: int, warm: int, expected: int) -> None:
    assert desired_agents(active, queued, capacity, warm, minimum=2, maximum=50) == expected


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="capacity"):
        desired_agents(1, 0, 0, 0, 1, 10)
