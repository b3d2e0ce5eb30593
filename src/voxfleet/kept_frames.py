"""The caller's side of an exact resume (docs/protocol.md): the audio frames a
client sent on its current socket, kept for a resume whose ``ready`` says the
agent did not hear them all (``resume_from``), and the frames it captured
while no socket was open."""

from __future__ import annotations

from collections import deque

KEEP_FRAMES = 500  # 10 s of 20 ms frames: what a resume may have to send again


class KeptFrames:
    def __init__(self, keep: int = KEEP_FRAMES) -> None:
        self._keep = keep
        self._sent: deque[bytes] = deque(maxlen=keep)
        self._sent_count = 0  # frames sent on the current socket; its first is 1
        self._unsent: deque[bytes] = deque(maxlen=keep)

    @property
    def waiting(self) -> bool:
        """Frames captured while no socket was open are waiting to go."""
        return bool(self._unsent)

    def sent(self, frame: bytes) -> None:
        self._sent.append(frame)
        self._sent_count += 1

    def unsent(self, frame: bytes) -> None:
        self._unsent.append(frame)

    def for_new_socket(self, resume_from: int | None) -> list[bytes]:
        """What a new socket sends first: the old socket's frames from
        ``resume_from`` on (the agent did not hear them), then those captured
        while no socket was open. The new socket counts from 1 again."""
        again: list[bytes] = []
        if resume_from is not None:
            first_kept = self._sent_count - len(self._sent) + 1
            again = list(self._sent)[max(0, resume_from - first_kept) :]
        again += self._unsent
        self._unsent.clear()
        self._sent, self._sent_count = deque(maxlen=self._keep), 0
        return again
