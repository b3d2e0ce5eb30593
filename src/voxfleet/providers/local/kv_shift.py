"""Keep a conversation's evaluated prompt when its window moves on.

A room's prompt carries a window of its history (ConversationState.
prompt_window) whose start steps forward every few turns. llama-cpp-python
reuses only the longest common *prefix* of the cached tokens and the new
prompt, so at a step everything after the system prompt would be evaluated
again: about 150 tokens, ~0.9 CPU-seconds on one core, the largest single waste
in a four-question call (docs/performance.md).

Instead, the turns that left the window are removed from the context's KV
cache and the turns after them moved back to close the gap (llama.cpp's
sequence remove and position shift; RoPE keys are re-rotated by llama.cpp on
the next decode). Then the prefix match covers the whole kept window and only
the new turn is evaluated. This is the "context shift" llama.cpp's own server
uses when a context fills: the kept turns' cache was computed while they could
still see the dropped ones, an approximation accepted there, and the reason a
step keeps at least ``MIN_KEPT`` tokens or does nothing.

Not a library: llama-cpp-python has no API for it; this works on its
``Llama`` object's cache bookkeeping (``input_ids``/``n_tokens``) through the
memory calls it exposes, and falls back to plain prefix reuse whenever the
cache does not look as expected."""

from __future__ import annotations

import llama_cpp
from llama_cpp import Llama
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from voxfleet.providers.local.pool import common_run

MIN_KEPT = 16  # tokens a shifted run must keep, or it is evaluated afresh
SEQ = 0  # the sequence id llama-cpp-python's Llama evaluates on


class PromptTokens:
    """The token ids ``create_chat_completion`` evaluates for a prompt, made
    with the model's own chat template the way llama-cpp-python makes them;
    with ``reply=False``, only the prompt's messages, without the start of
    the assistant's turn that a generation appends."""

    def __init__(self, llama: Llama, *, reply: bool = True) -> None:
        template = llama.metadata.get("tokenizer.chat_template")
        self._formatter = (
            Jinja2ChatFormatter(
                template=template,
                eos_token=_text(llama, llama.token_eos()),
                bos_token=_text(llama, llama.token_bos()),
                add_generation_prompt=reply,
            )
            if template
            else None
        )

    def __call__(self, llama: Llama, prompt: list[dict[str, str]]) -> list[int] | None:
        if self._formatter is None:
            return None
        result = self._formatter(messages=prompt)  # type: ignore[arg-type]
        return llama.tokenize(
            result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True
        )


def _text(llama: Llama, token: int) -> str:
    return llama.detokenize([token], special=True).decode("utf-8", errors="ignore")


def shift_to(llama: Llama, tokens: list[int] | None) -> int:
    """Make ``llama``'s cache a prefix of ``tokens`` where it holds them past a
    gap: cached ``A B C`` and a prompt ``A C D`` become a cache ``A C``, so only
    ``D`` is evaluated. Returns the tokens removed (0: nothing to do, or it
    could not be done and plain prefix reuse applies)."""
    cached = llama.input_ids[: llama.n_tokens].tolist()
    if not tokens or not cached:
        return 0
    start = common_run(cached, tokens)
    if start >= len(tokens) or start >= len(cached):
        return 0
    gap_end, kept = 0, 0
    for q in range(start + 1, len(cached)):
        if cached[q] == tokens[start]:
            run = common_run(cached, tokens, q, start)
            if run > kept:
                gap_end, kept = q, run
    if kept < MIN_KEPT:
        return 0
    ctx = llama._ctx
    if not llama_cpp.llama_memory_can_shift(ctx.memory):
        return 0
    gap = gap_end - start
    # What followed the kept run, then the gap; then the run moves back.
    if not ctx.kv_cache_seq_rm(SEQ, gap_end + kept, -1) or not ctx.kv_cache_seq_rm(
        SEQ, start, gap_end
    ):
        llama.n_tokens = 0  # the cache is in an unknown state: evaluate afresh
        return 0
    ctx.kv_cache_seq_shift(SEQ, gap_end, gap_end + kept, -gap)
    llama.input_ids[start : start + kept] = cached[gap_end : gap_end + kept]
    llama.n_tokens = start + kept
    return gap
