"""Call ids: every id the server makes has the shape the API checks before any
query, and nothing else has it."""

from __future__ import annotations

import pytest

from voxfleet.domain.calls import is_call_id, new_call_id

pytestmark = pytest.mark.unit


def test_new_ids_have_the_checked_shape() -> None:
    ids = {new_call_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(is_call_id(i) for i in ids)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "c_",
        "c_short",
        "c_AAAAAAAAAAAAAAA",
        "c_AAAAAAAAAAAAAAAAA",
        "x_AAAAAAAAAAAAAAAA",
        "c_AAAAAAA\x00AAAAAAAA",
        "c_AAAAAAAA/AAAAAAA",
        "c_AAAAAAAAAAAAAAAA\n",
        "C_AAAAAAAAAAAAAAAA",
    ],
)
def test_anything_else_is_not_a_call_id(text: str) -> None:
    assert not is_call_id(text)
