"""One llama.cpp context shared by several conversations, each a sequence of
its KV cache, stepped together: a round is one llama_decode with the next
token of every generation that wants one (and chunks of new prompts). A token
costs its weights' trip through memory (~85 MB for SmolLM2 Q4_1), so four
rooms' next tokens in one decode cost little more than one room's. The
provider (batched.py) runs each round as one job of the model scheduler;
everything here runs on the scheduler's threads, one round at a time."""

from __future__ import annotations

import codecs
import random
from collections import deque
from pathlib import Path

import llama_cpp
from llama_cpp import _internals as internals
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from voxfleet.observability.metrics import LLM_TOKENS
from voxfleet.providers.chat import GenerationParams
from voxfleet.providers.local.gguf import model_params
from voxfleet.providers.local.pool import Prompt, Slot
from voxfleet.providers.urgency import Urgency

PENALTY_WINDOW = 64  # tokens the repeat penalty looks back on, as llama-cpp-python's


class Sequence(Slot):
    """One sequence of the shared context, and the tokens its cache holds."""

    def __init__(self, seq_id: int) -> None:
        super().__init__()
        self.id = seq_id
        self.tokens: list[int] = []


class Generation:
    """One reply on one sequence: its tokens still to evaluate (the prompt's
    rest, then each sampled token) and the text pieces made, up to the consumer."""

    def __init__(
        self,
        sequence: Sequence,
        tokens: list[int],
        params: GenerationParams,
        urgency: Urgency,
        sampler: Sampler,
    ) -> None:
        self.sequence = sequence
        self.pending = tokens
        self.params = params
        self.urgency = urgency
        self.prompt_left = len(tokens)
        self.made = 0
        self.pieces: deque[str] = deque()
        self.finished = False
        self.gone = False  # its consumer went away: it leaves the next round
        self.error: BaseException | None = None
        self.sampler = sampler
        self.text = codecs.getincrementaldecoder("utf-8")(errors="ignore")

    def wants_token(self, ahead: int) -> bool:
        return not (self.finished or self.gone) and len(self.pieces) < ahead


class Rounds:
    """The model, its one context with ``sequences`` sequences of ``context``
    tokens each, and the generations stepping in it."""

    def __init__(self, path: Path, threads: int, context: int, sequences: int, batch: int) -> None:
        self.model = internals.LlamaModel(
            path_model=str(path), params=model_params(), verbose=False
        )
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = context * sequences
        params.n_batch = params.n_ubatch = batch
        params.n_seq_max = sequences
        params.n_threads = params.n_threads_batch = threads
        params.kv_unified = False  # each sequence attends over its own cells only
        self.ctx = internals.LlamaContext(model=self.model, params=params, verbose=False)
        self.per_sequence = context
        self.size = batch
        self._batch = llama_cpp.llama_batch_init(batch, 0, 1)
        self.sequences = [Sequence(i) for i in range(sequences)]
        self.active: list[Generation] = []
        self.evaluated = 0  # prompt tokens evaluated so far (generated ones not counted)
        self.rounds = 0
        meta = self.model.metadata()
        eos, bos = self.model.token_eos(), self.model.token_bos()
        self._format = Jinja2ChatFormatter(
            template=meta["tokenizer.chat_template"],
            eos_token=self.model.token_get_text(eos) if eos != -1 else "",
            bos_token=self.model.token_get_text(bos) if bos != -1 else "",
            stop_token_ids=[eos],
        )

    def tokenize(self, prompt: Prompt) -> list[int]:
        """The prompt in the model's chat template, as llama-cpp-python makes it."""
        formatted = self._format(messages=prompt)  # type: ignore[arg-type]
        text = formatted.prompt.encode("utf-8")
        tokens: list[int] = self.model.tokenize(text, not formatted.added_special, True)
        return tokens

    def start(
        self, sequence: Sequence, tokens: list[int], params: GenerationParams, urgency: Urgency
    ) -> Generation:
        """A generation of ``tokens`` on ``sequence``, keeping the longest start of
        them its cache holds. None of it is evaluated yet: rounds do that."""
        if len(tokens) + 1 > self.per_sequence:
            limit = self.per_sequence
            raise ValueError(f"a prompt of {len(tokens)} tokens; a conversation holds {limit}")
        kept = self.keep(sequence, tokens)
        sampler = Sampler(params, self.model.n_vocab())
        generation = Generation(sequence, tokens[kept:], params, urgency, sampler)
        self.active.append(generation)
        return generation

    def prefill(self, sequence: Sequence, tokens: list[int]) -> None:
        """Evaluate ``tokens`` into ``sequence`` now, alone."""
        tokens = tokens[: self.per_sequence - 1]
        kept = self.keep(sequence, tokens)
        for start in range(kept, len(tokens), self.size):
            chunk = tokens[start : start + self.size]
            self._decode([(sequence, chunk, False)])
            self.evaluated += len(chunk)

    def leave(self, generation: Generation) -> None:
        """Take a finished or abandoned generation out of the rounds."""
        if generation in self.active:
            self.active.remove(generation)
            generation.sampler.close()

    def next_piece(self, generation: Generation, ahead: int) -> str | None:
        """The generation's next piece of text (None at its end), running rounds
        until it has one: each round steps every generation that wants a token."""
        while not generation.pieces and not generation.finished:
            self.round(generation, ahead)
        if generation.error is not None:
            raise generation.error
        return generation.pieces.popleft() if generation.pieces else None

    def round(self, requester: Generation, ahead: int) -> None:
        """One llama_decode for ``requester`` and the generations at least as urgent
        that want a token (or have prompt left): a less urgent one would not ride
        free, as a token in a batch still costs ~3/4 of one alone here."""
        level = requester.urgency.level
        riders = [g for g in self.active if g is not requester and g.wants_token(ahead)]
        riders.sort(key=lambda g: g.urgency.level)
        work: list[tuple[Sequence, list[int], bool]] = []
        members: list[Generation] = []
        room = self.size
        for g in [requester, *riders]:
            if g.urgency.level > level:
                continue
            take = g.pending[:room]
            if not take:
                continue
            room -= len(take)
            work.append((g.sequence, take, len(take) == len(g.pending)))
            members.append(g)
            if room == 0:
                break
        try:
            outputs = self._decode(work)
        except RuntimeError as e:
            for g in members:
                g.error, g.finished = e, True
            return
        self.rounds += 1
        for g, (_, take, _), index in zip(members, work, outputs, strict=True):
            prompt = min(g.prompt_left, len(take))
            g.prompt_left -= prompt
            self.evaluated += prompt
            del g.pending[: len(take)]
            if index is not None:
                self._sample(g, index)

    def _sample(self, g: Generation, index: int) -> None:
        token = g.sampler.sample(self.ctx, index)
        g.made += 1
        full = len(g.sequence.tokens) + 1 >= self.per_sequence
        if llama_cpp.llama_vocab_is_eog(self.model.vocab, token) or full:
            g.finished = True
            return
        if text := g.text.decode(self.model.detokenize([token])):
            g.pieces.append(text)
            LLM_TOKENS.inc()
        if g.made >= g.params.max_tokens:
            g.finished = True
        else:
            g.pending = [token]

    def keep(self, sequence: Sequence, tokens: list[int]) -> int:
        """Drop what ``sequence`` holds past its common start with ``tokens``
        (always leaving one token to evaluate, for its logits); how much is kept."""
        kept = 0
        for mine, theirs in zip(sequence.tokens, tokens[:-1], strict=False):
            if mine != theirs:
                break
            kept += 1
        llama_cpp.llama_memory_seq_rm(self.ctx.memory, sequence.id, kept, -1)
        del sequence.tokens[kept:]
        return kept

    def _decode(self, work: list[tuple[Sequence, list[int], bool]]) -> list[int | None]:
        """One llama_decode of each sequence's tokens; per sequence, the batch index
        of its last token's logits when it asked for them."""
        b = self._batch
        n = 0
        outputs: list[int | None] = []
        for sequence, tokens, logits in work:
            start = len(sequence.tokens)
            for i, token in enumerate(tokens):
                b.token[n], b.pos[n], b.n_seq_id[n] = token, start + i, 1
                b.seq_id[n][0] = sequence.id
                b.logits[n] = int(logits and i == len(tokens) - 1)
                n += 1
            outputs.append(n - 1 if logits else None)
        b.n_tokens = n
        status = llama_cpp.llama_decode(self.ctx.ctx, b)
        if status != 0:
            for sequence, _, _ in work:  # its cache may hold part of the batch: start over
                llama_cpp.llama_memory_seq_rm(self.ctx.memory, sequence.id, 0, -1)
                sequence.tokens.clear()
            raise RuntimeError(f"llama_decode failed ({status})")
        for sequence, tokens, _ in work:
            sequence.tokens.extend(tokens)
        return outputs


class Sampler:
    """One generation's sampler chain: llama-cpp-python's default for these
    parameters (repeat penalty, then greedy at temperature 0, else top-k 40,
    top-p, min-p 0.05, temperature and a random draw)."""

    def __init__(self, params: GenerationParams, vocab: int) -> None:
        chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        steps = [
            llama_cpp.llama_sampler_init_penalties(
                vocab, PENALTY_WINDOW, params.repeat_penalty, 0.0, 0.0
            )
        ]
        if params.temperature == 0:
            steps.append(llama_cpp.llama_sampler_init_greedy())
        else:
            steps += [
                llama_cpp.llama_sampler_init_top_k(40),
                llama_cpp.llama_sampler_init_typical(1.0, 1),
                llama_cpp.llama_sampler_init_top_p(params.top_p, 1),
                llama_cpp.llama_sampler_init_min_p(0.05, 1),
                llama_cpp.llama_sampler_init_temp(params.temperature),
                llama_cpp.llama_sampler_init_dist(
                    random.getrandbits(32) if params.seed is None else params.seed
                ),
            ]
        for step in steps:  # the chain owns them from here
            llama_cpp.llama_sampler_chain_add(chain, step)
        self._chain = chain

    def sample(self, ctx: internals.LlamaContext, index: int) -> int:
        """A token from the logits of batch position ``index`` (and remember it)."""
        token: int = llama_cpp.llama_sampler_sample(self._chain, ctx.ctx, index)
        return token

    def close(self) -> None:
        llama_cpp.llama_sampler_free(self._chain)
