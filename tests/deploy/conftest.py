"""Fixtures of the deploy/ checks (helpers in support.py)."""

from __future__ import annotations

import pytest

from tests.deploy.support import VALUE_SETS, Obj, render


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[Obj]]:
    """Each value set's rendered objects, rendered once per session."""
    return {name: render(values) for name, values in VALUE_SETS.items()}
