"""How far the agent heard a caller's socket when the caller resumes on a new
one (``Inbox.close_epoch``): the answer decides which frames the caller sends
again, so a wrong one loses or doubles a frame."""

from __future__ import annotations

import pytest

from voxfleet.transport.stream import Inbox

pytestmark = pytest.mark.unit
OLD, NEW = 100, 200


def test_a_followed_socket_reports_what_was_taken_and_the_new_one_starts_at_one() -> None:
    inbox = Inbox()
    for seq in (1, 2, 3):
        assert inbox.accept(OLD, seq)
    assert inbox.close_epoch(OLD, NEW) == 3
    assert not inbox.accept(OLD, 4)  # the old socket is fenced out
    assert inbox.accept(NEW, 1)


def test_a_socket_whose_audio_never_came_through_reports_nothing_taken() -> None:
    # A greeted caller whose landing died before any of its audio reached the
    # agent: none of that socket's frames were heard, so all are sent again.
    inbox = Inbox()
    assert inbox.close_epoch(OLD, NEW) == 0
    assert inbox.accept(NEW, 1)


def test_an_inbox_past_the_old_socket_or_joined_blind_cannot_tell() -> None:
    moved_on = Inbox()
    assert moved_on.accept(NEW, 1)
    assert moved_on.close_epoch(OLD, NEW + 1) is None
    assert Inbox(last=None).close_epoch(OLD, NEW) is None
