"""Which evaluated prompt a conversation's next generation should use.

A local LLM keeps a few conversations evaluated at once (a llama.cpp context
each in llm.py, a sequence each of one context in batched.py): the "slots".
A generation or prefill takes the free slot that saves it the most work and
costs the other conversations the least: its own conversation's slot first;
else a slot nobody needs any more (its room ended here, or it never held
more than the common start of every call: system prompt and greeting); and
only when there is none, a live conversation's slot, the least recently
used (a generation only: a prefill is optional work and waits for a turn).
A room that ends says so (``release``): without that, a new call took
whichever slot was least recently used, often a live room's, which then had
to evaluate its whole conversation again (~150 tokens, ~0.8 s of CPU)."""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Sequence
from typing import Generic, TypeVar

Prompt = list[dict[str, str]]
T = TypeVar("T")


def chars(prompt: Prompt) -> int:
    """The size of a prompt's messages, in the units of ``Slot.shared``."""
    return sum(len(m["content"]) + 1 for m in prompt)


class Slot:
    """A place that holds one conversation's evaluated prompt."""

    def __init__(self) -> None:
        self.busy = False
        self.prompt: Prompt = []  # what its cache holds the start of
        self.used = 0  # when it was last taken, for least-recently-used ties
        self.released = False  # its conversation ended: nobody needs what it holds

    def shared(self, prompt: Prompt) -> int:
        """Characters of ``prompt`` this slot has evaluated and keeps: its
        start, and when the prompt's window stepped past older turns, the
        turns after them (kv_shift.py), so a room finds its own slot again
        after a step rather than another room's."""
        return self._run(prompt)[0]

    def _run(self, prompt: Prompt) -> tuple[int, int]:
        """``shared(prompt)``, and where in what this slot holds it ends."""
        mine = self.prompt
        start = common_run(mine, prompt)
        total, end = chars(prompt[:start]), start
        if start < len(prompt):
            # Past a gap: the longest run of the prompt's next messages this
            # slot holds. Not the first place its next message appears: a
            # caller who asks again often gets the same answer twice.
            runs = (
                (chars(prompt[start : start + n]), q + n)
                for q in range(start + 1, len(mine))
                if (n := common_run(mine, prompt, q, start))
            )
            gap_run, gap_end = max(runs, default=(0, start))
            total, end = total + gap_run, gap_end
        return total, end

    def continues(self, prompt: Prompt) -> bool:
        """It holds ``prompt``'s own conversation: more of it than the first
        two messages (the system prompt and greeting every call starts with),
        and nothing after it but maybe one message (a reply's prompt that was
        heard otherwise in the end). Another room that was asked the same
        first question, and got the same answer, holds more after it."""
        return self._continues(prompt, *self._run(prompt))

    def _continues(self, prompt: Prompt, shared: int, end: int) -> bool:
        return shared > chars(prompt[:2]) and end >= len(self.prompt) - 1

    def holds(self, prompt: Prompt) -> bool:
        """It holds ``prompt``'s conversation up to its last message (a reply
        that may not have been evaluated), not just a few of its messages:
        two rooms asked the same question get the same answer."""
        shared, end = self._run(prompt)
        return self._continues(prompt, shared, end) and shared >= chars(prompt[:-1])

    def rank(self, prompt: Prompt) -> tuple[int, int, int]:
        """Higher is better for ``prompt``: its own conversation's slot, then
        one nobody needs, then a live conversation's; the most it keeps; the
        least recently used."""
        shared, end = self._run(prompt)
        tier = 2 if self._continues(prompt, shared, end) else 0 if self.owned() else 1
        return tier, shared, -self.used

    def owned(self) -> bool:
        """A live conversation needs what it holds."""
        return not self.released and len(self.prompt) > 2


def common_run(a: Sequence[T], b: Sequence[T], i: int = 0, j: int = 0) -> int:
    """How many items (messages, tokens) ``a[i:]`` and ``b[j:]`` share at their start."""
    n = 0
    while i + n < len(a) and j + n < len(b) and a[i + n] == b[j + n]:
        n += 1
    return n


S = TypeVar("S", bound=Slot)


class ContextPool(Generic[S]):
    """The slots. Generations take one on the event loop and hold it for the
    whole reply; a prefill takes one on the models' thread only while it runs,
    so a queued prefill holds nothing."""

    def __init__(self, contexts: list[S]) -> None:
        self._contexts = contexts
        self._lock = threading.Lock()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        self._uses = 0
        # Conversations that ended while their slot was busy: it is released
        # when it comes back holding one of them.
        self._ended: deque[Prompt] = deque(maxlen=2 * len(contexts))

    def try_take(self, prompt: Prompt, *, evict: bool = True) -> S | None:
        """The best free slot for ``prompt``, now, or None. ``evict=False``
        (a prefill): not a live conversation's. A prefill is optional work,
        and the room it would take the slot from evaluates its whole
        conversation again at its next turn (a new call's first prefill often
        comes while the call before it on the agent has not ended yet)."""
        with self._lock:
            free = [c for c in self._contexts if not c.busy]
            if not free:
                return None
            (tier, *_), best = max(((c.rank(prompt), c) for c in free), key=lambda r: r[0])
            if not evict and tier == 0:
                return None
            best.busy = True
            best.released = False
            self._uses += 1
            best.used = self._uses
            return best

    async def take(self, prompt: Prompt) -> S:
        returned = asyncio.Event()
        waiter = (asyncio.get_running_loop(), returned)
        while (context := self.try_take(prompt)) is None:
            with self._lock:
                self._waiters.append(waiter)
            if (context := self.try_take(prompt)) is not None:  # returned meanwhile
                break
            await returned.wait()
            returned.clear()
        with self._lock:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
        return context

    def give_back(self, context: S, prompt: Prompt) -> None:
        """From any thread."""
        with self._lock:
            context.busy = False
            context.prompt = prompt
            if any(context.holds(ended) for ended in self._ended):
                context.released = True
            waiters, self._waiters = self._waiters, []
        for loop, returned in waiters:
            loop.call_soon_threadsafe(returned.set)

    def release(self, prompt: Prompt) -> None:
        """The conversation whose prompt is ``prompt`` is over here: its slot
        is the first another conversation may take."""
        with self._lock:
            self._ended.append(prompt)
            for context in self._contexts:
                if not context.busy and context.holds(prompt):
                    context.released = True
