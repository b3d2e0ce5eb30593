"""Conversation state of one room: everything another agent process needs to
carry the call on. It lives outside the pipeline object (a RoomStateStore keeps
it), is saved at every change and serialises to JSON for Redis."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, Field

from voxfleet.domain.calls import Speaker, Turn


class HistoryItem(BaseModel):
    role: Literal["user", "agent"]
    text: str


class ConversationState(BaseModel):
    room_id: str
    profile: str
    greeted: bool = False
    history: list[HistoryItem] = Field(default_factory=list)
    next_seq: int = 0
    # A caller utterance that was committed but not yet answered; a new agent that
    # resumes the room answers it instead of waiting for the caller to repeat it.
    pending_user_text: str | None = None
    # The caller audio (frame ``audio_seq`` of the edge's stream ``audio_epoch``)
    # this state accounts for: a new agent asks the edge to replay what came
    # after it, so nothing said is lost.
    audio_epoch: int = 0
    audio_seq: int = 0
    version: int = 0

    @classmethod
    def from_turns(cls, room_id: str, profile: str, turns: Sequence[Turn]) -> ConversationState:
        """A live room's state rebuilt from its stored turns (when Redis lost it
        with the agent that held it): greeted, the history and the next turn
        number, but no position in the caller's audio."""
        return cls(
            room_id=room_id,
            profile=profile,
            greeted=True,
            history=[
                HistoryItem(role="user" if t.speaker is Speaker.USER else "agent", text=t.text)
                for t in turns
                if t.text
            ],
            next_seq=max((t.seq for t in turns), default=-1) + 1,
        )

    def take_seq(self) -> int:
        seq = self.next_seq
        self.next_seq += 1
        return seq

    def add_user(self, text: str) -> None:
        self.history.append(HistoryItem(role="user", text=text))

    def add_agent(self, text: str) -> None:
        if text:
            self.history.append(HistoryItem(role="agent", text=text))

    def prompt_window(self, max_items: int) -> list[HistoryItem]:
        """The history a prompt carries (consecutive items of one role merged): at
        least the last ``max_items`` items (all of them while there are no more),
        at most ``2 * max_items - 1``.
        Its start moves in steps of ``max_items``, not one item per turn, so
        the prompt of the next turn starts with this one's and a model's prompt
        cache only evaluates what is new; a window that slid by one item every
        turn would make it evaluate the whole prompt again every turn."""
        if max_items <= 0:
            return []
        start = max(0, (len(self.history) - max_items) // max_items * max_items)
        return _merged(self.history[start:])


def _merged(items: list[HistoryItem]) -> list[HistoryItem]:
    merged: list[HistoryItem] = []
    """Consecutive items of one role as one (a caller who spoke again before
    the agent answered)."""
    for item in items:
        if merged and merged[-1].role == item.role:
            merged[-1] = HistoryItem(role=item.role, text=f"{merged[-1].text} {item.text}")
        else:
            merged.append(item)
    return merged
