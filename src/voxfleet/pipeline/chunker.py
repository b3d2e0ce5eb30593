"""Clause/sentence chunking of streamed LLM text, so speech starts before the
whole reply exists. The first chunk may end at a clause (a comma after two
words), or after three words at a plain word boundary, to get the first audio out
early: every token waited for is ~25 ms of silence for the caller. Later chunks
end at sentences, which sound more natural, unless they grow long."""

from __future__ import annotations

import re

SENTENCE_END = ".!?"
CLAUSE_END = ",;:"
FIRST_CLAUSE_MIN_WORDS = 2
FIRST_CHUNK_MAX_WORDS = 3
LONG_CHUNK_WORDS = 14
_MARKUP = re.compile(r"[*_#`~>|\[\]{}<]|https?://\S+")
_NON_SPEECH = re.compile(r"[^\w\s.,!?;:'\"()$%&+\-/]")
_SPACES = re.compile(r"\s+")


def speakable(text: str) -> str:
    """Text as it should be spoken: markdown, links and emoji removed."""
    text = _MARKUP.sub(" ", text)
    text = _SPACES.sub(" ", _NON_SPEECH.sub(" ", text)).strip()
    return text if any(ch.isalnum() for ch in text) else ""


class ClauseChunker:
    def __init__(self) -> None:
        self._buf = ""
        self._emitted = 0

    def push(self, piece: str) -> list[str]:
        self._buf += piece
        chunks: list[str] = []
        while (cut := self._find_cut()) is not None:
            chunk, self._buf = self._buf[:cut].strip(), self._buf[cut:]
            if speakable(chunk):
                chunks.append(chunk)
                self._emitted += 1
        return chunks

    def flush(self) -> list[str]:
        chunk, self._buf = self._buf.strip(), ""
        return [chunk] if speakable(chunk) else []

    def _find_cut(self) -> int | None:
        buf = self._buf
        words = 0
        for i, ch in enumerate(buf[:-1]):
            if ch.isspace() and i > 0 and not buf[i - 1].isspace():
                words += 1
            # A boundary counts only once the next character is whitespace, so
            # "3.5" and "e.g." mid-token are not cut.
            if not buf[i + 1].isspace():
                continue
            if ch in SENTENCE_END:
                return i + 1
            if ch in CLAUSE_END and (
                (self._emitted == 0 and words + 1 >= FIRST_CLAUSE_MIN_WORDS)
                or words + 1 >= LONG_CHUNK_WORDS
            ):
                return i + 1
            if self._emitted == 0 and words + 1 >= FIRST_CHUNK_MAX_WORDS and ch.isalnum():
                return i + 1
        return None
