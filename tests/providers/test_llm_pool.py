"""Which slot (evaluated conversation) a local LLM's next prompt takes
(providers/local/pool.py): its own; else one nobody needs; a live room's last."""

from __future__ import annotations

from voxfleet.providers.local.pool import ContextPool, Prompt, Slot


def prompt(*texts: str) -> Prompt:
    return [{"role": "user", "content": t} for t in texts]


def pool_of(*held: Prompt) -> tuple[ContextPool[Slot], list[Slot]]:
    """Slots holding ``held``, used in this order (the first least recently)."""
    slots = [Slot() for _ in held]
    for used, (slot, p) in enumerate(zip(slots, held, strict=True), 1):
        slot.prompt, slot.used = p, used
    return ContextPool(slots), slots


A = prompt("system", "hi", "qa1", "aa1", "qa2", "aa2")
B = prompt("system", "hi", "qb1", "ab1")
NEW = prompt("system", "hi", "qc1")


def test_a_conversation_takes_its_own_slot() -> None:
    pool, (a, _b) = pool_of(A, B)
    assert pool.try_take([*A, *prompt("qa3")]) is a


def test_a_room_takes_its_own_slot_though_it_holds_a_reply_prompt_heard_otherwise() -> None:
    pool, (a, _b) = pool_of([*A, *prompt("qa3 (speculated)")], B)
    assert pool.try_take([*A, *prompt("qa3")]) is a


def test_a_new_room_asked_what_a_live_room_was_asked_leaves_that_rooms_slot_alone() -> None:
    pool, (_a, empty) = pool_of(A, [])
    assert pool.try_take(prompt("system", "hi", "qa1")) is empty


def test_a_new_call_takes_an_ended_rooms_slot_not_a_live_ones() -> None:
    pool, (_a, b) = pool_of(A, B)  # a is the least recently used
    pool.release(B)
    assert pool.try_take(NEW) is b
    assert not b.released  # the new call's now


def test_a_new_call_takes_a_slot_that_holds_only_the_common_start() -> None:
    greeting = prompt("system", "hi")
    pool, (_a, g, _b) = pool_of(A, greeting, B)
    assert pool.try_take(NEW) is g


def test_without_a_free_slot_nobody_needs_a_live_rooms_least_recently_used_goes() -> None:
    pool, (a, _b) = pool_of(A, B)
    assert pool.try_take(NEW) is a


def test_an_ended_room_whose_slot_is_busy_releases_it_when_it_comes_back() -> None:
    pool, (_a, b) = pool_of(A, B)
    taken = pool.try_take([*B, *prompt("qb2")])  # its last reply, cut short
    assert taken is b
    pool.release([*B, *prompt("qb2", "heard")])
    assert not b.released
    pool.give_back(b, [*B, *prompt("qb2")])
    assert b.released
    assert pool.try_take(NEW) is b


def test_an_ended_room_whose_window_stepped_at_its_last_turn_releases_its_slot() -> None:
    pool, (a, _b) = pool_of([*A, *prompt("qa3")], B)  # its last reply's prompt
    pool.release(prompt("system", "aa1", "qa2", "aa2", "qa3", "aa3"))  # past hi and qa1
    assert a.released


def test_a_room_that_ends_with_another_rooms_answer_in_its_window_releases_only_its_own() -> None:
    pool, (a, b) = pool_of(A, B)
    # another room asked qa1 too, and got the same answer
    pool.release(prompt("system", "qa1", "aa1", "qe2", "ae2", "qe3", "ae3"))
    assert not a.released and not b.released


def test_a_release_leaves_other_rooms_slots_alone() -> None:
    first_turn = prompt("system", "hi", "qd1")
    pool, (a, d) = pool_of(A, first_turn)
    pool.release(prompt("system", "hi", "qe1", "ae1"))  # a room neither holds
    assert not a.released and not d.released


def test_a_prefill_takes_no_live_rooms_slot() -> None:
    pool, (a, b) = pool_of(A, B)
    assert pool.try_take(NEW, evict=False) is None  # optional work: B would evaluate again
    assert not a.busy and not b.busy
    assert pool.try_take([*B, *prompt("qb2")], evict=False) is b  # its own, though
    pool.give_back(b, B)
    pool.release(B)
    assert pool.try_take(NEW, evict=False) is b  # one nobody needs


def test_a_room_asked_twice_and_answered_the_same_finds_its_slot_after_its_window_stepped() -> None:
    # The same answer twice: its window's start is the second one, not the first.
    held = prompt("system", "hi", "q1", "same", "q1 again", "same", "q2", "a2", "q3")
    own, other = Slot(), Slot()
    own.prompt, other.prompt = held, prompt("system", "hi", "qx", "ax")
    stepped = prompt("system", "same", "q2", "a2", "q3", "a3")  # past hi .. q1 again
    assert own.shared(stepped) == sum(len(t) + 1 for t in ["system", "same", "q2", "a2", "q3"])
    assert own.continues(stepped)
    pool = ContextPool([other, own])
    assert pool.try_take(stepped, evict=False) is own
