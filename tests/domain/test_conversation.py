"""Conversation state: sequence numbers, history, and the JSON that carries a room
from one agent process to the next."""

from __future__ import annotations

import itertools

import pytest

from voxfleet.domain.conversation import ConversationState, HistoryItem

pytestmark = pytest.mark.unit


def state(*turns: tuple[str, str]) -> ConversationState:
    s = ConversationState(room_id="c_room", profile="default")
    for role, text in turns:
        if role == "user":
            s.add_user(text)
        else:
            s.add_agent(text)
    return s


def pairs(items: list[HistoryItem]) -> list[tuple[str, str]]:
    return [(i.role, i.text) for i in items]


def test_take_seq_increments() -> None:
    s = state()
    assert [s.take_seq() for _ in range(3)] == [0, 1, 2]
    assert s.next_seq == 3


def test_take_seq_continues_from_a_resumed_state() -> None:
    s = ConversationState(room_id="c_room", profile="default", next_seq=41)
    assert s.take_seq() == 41
    assert s.take_seq() == 42


def test_add_agent_ignores_empty_text() -> None:
    s = state(("user", "hello"))
    s.add_agent("")
    assert pairs(s.history) == [("user", "hello")]
    s.add_agent("hi there")
    assert pairs(s.history) == [("user", "hello"), ("agent", "hi there")]


def test_the_prompt_window_merges_consecutive_items_of_one_role() -> None:
    s = state(("user", "hi"), ("agent", "hello"), ("user", "a latte"), ("user", "large"))
    s.add_agent("sure")
    assert pairs(s.prompt_window(10)) == [
        ("user", "hi"),
        ("agent", "hello"),
        ("user", "a latte large"),
        ("agent", "sure"),
    ]


def test_the_prompt_window_moves_in_steps_so_the_next_prompt_starts_with_this_one() -> None:
    s = state()
    windows = []
    for turn in range(1, 8):
        s.add_user(f"u{turn}")
        s.add_agent(f"a{turn}")
        windows.append([text for _role, text in pairs(s.prompt_window(4))])
    for shorter, longer in itertools.pairwise(windows):
        # Either the next prompt starts with this one, or the window stepped on.
        assert longer[: len(shorter)] == shorter or len(longer) == 4
    assert all(4 <= len(w) <= 7 for w in windows[1:])
    assert windows[-1][-1] == "a7"  # always up to the latest item
    assert windows[2] == ["u1", "a1", "u2", "a2", "u3", "a3"]  # grown by the new turn
    assert windows[3] == ["u3", "a3", "u4", "a4"]  # a step: the first 4 items left at once
    assert windows[4] == ["u3", "a3", "u4", "a4", "u5", "a5"]  # grows again


def test_the_prompt_window_leaves_the_history_unchanged() -> None:
    s = state(("user", "one"), ("user", "two"), ("agent", "three"))
    before = s.model_copy(deep=True)
    s.prompt_window(10)
    assert s == before


def test_a_prompt_window_of_zero_is_empty() -> None:
    assert state(("user", "hi"), ("agent", "hello")).prompt_window(0) == []


def test_json_round_trip_keeps_everything() -> None:
    s = ConversationState(
        room_id="c_room",
        profile="barista",
        greeted=True,
        next_seq=7,
        pending_user_text="and a muffin",
        audio_seq=12_345,
        version=3,
    )
    s.add_user("a latte \u2615 please")
    s.add_agent("Sure, that's 4 dollars.")

    restored = ConversationState.model_validate_json(s.model_dump_json())
    assert restored == s
    assert restored.history[0].text == "a latte \u2615 please"
    # The restored state carries on where the old one stopped.
    assert restored.take_seq() == 7
