"""How urgent a model call is, for the scheduler of an agent's local models
(providers/local/scheduler.py).

A reply carries one ``Urgency`` for its whole life and moves it on: its work
is speculative while the caller may still be talking, critical from the
decided end of the caller's turn until its first audio is ready, and the
tail after that. The reply's producing task sets it as the current urgency
(a context variable), so the providers it calls need no extra argument, and
work nobody asked for urgently (prefill, warm-up) says so itself."""

from __future__ import annotations

import contextvars
from enum import IntEnum


class Level(IntEnum):
    """Lower runs first."""

    CRITICAL = 0  # between a caller's end of speech and the first audio of the reply
    TAIL = 1  # the rest of a reply, and speculative work for a caller still talking
    BACKGROUND = 2  # prefill, warm-up: only when nothing else waits


class Urgency:
    """One reply's urgency; it changes as the reply goes (read when a job is
    picked, so queued work moves up or down with it)."""

    __slots__ = ("_audio_ready", "level")

    def __init__(self, level: Level = Level.TAIL) -> None:
        self.level = level
        self._audio_ready = False

    def decided(self) -> None:
        """The caller's turn is over: until its first audio is ready, this reply
        stands between them and an answer."""
        if not self._audio_ready:
            self.level = Level.CRITICAL

    def first_audio_ready(self) -> None:
        """The caller can start hearing the reply: the rest of it is the tail."""
        self._audio_ready = True
        self.level = Level.TAIL

    def __repr__(self) -> str:
        return f"Urgency({self.level.name})"


BACKGROUND = Urgency(Level.BACKGROUND)
_DEFAULT = Urgency(Level.TAIL)
_current: contextvars.ContextVar[Urgency] = contextvars.ContextVar("urgency", default=_DEFAULT)


def current() -> Urgency:
    return _current.get()


def use(urgency: Urgency) -> None:
    """Make ``urgency`` the current one for this task (and tasks it starts)."""
    _current.set(urgency)
