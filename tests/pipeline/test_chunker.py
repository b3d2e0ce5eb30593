"""Clause chunker: streamed text pieces in, speakable chunks out."""

from __future__ import annotations

import pytest

from voxfleet.pipeline.chunker import ClauseChunker, speakable

pytestmark = pytest.mark.unit


def feed(pieces: list[str]) -> list[str]:
    chunker = ClauseChunker()
    out: list[str] = []
    for piece in pieces:
        out.extend(chunker.push(piece))
    return out + chunker.flush()


def test_first_chunk_may_end_at_a_short_clause() -> None:
    pieces = ["Oh", " sure", ",", " we", " open", " at", " seven", ",", " and", " close", "."]
    assert feed(pieces) == ["Oh sure,", "we open at seven, and close."]


def test_first_chunk_without_punctuation_is_cut_after_three_words() -> None:
    text = "The capital of France is Paris, and it is lovely. Come visit."
    assert feed(list(text)) == [
        "The capital of",
        "France is Paris, and it is lovely.",
        "Come visit.",
    ]


def test_later_chunks_end_at_sentences_unless_long() -> None:
    text = "Yes. It costs three dollars, plus tax, today. " + "word " * 13 + "more, end."
    chunks = feed(list(text))
    assert chunks[:2] == ["Yes.", "It costs three dollars, plus tax, today."]
    assert chunks[2] == ("word " * 13 + "more,").strip()
    assert chunks[3] == "end."


def test_decimal_points_mid_token_are_not_cut() -> None:
    assert feed(["Oh. It is 3.5", " km away."]) == ["Oh.", "It is 3.5 km away."]


def test_boundary_waits_for_following_whitespace() -> None:
    chunker = ClauseChunker()
    assert chunker.push("Hi there.") == []  # could still be "there.com"
    assert chunker.push(" Next") == ["Hi there."]


def test_markup_and_emoji_are_not_spoken() -> None:
    assert speakable("**Great** choice 😀 see https://x.io #1") == "Great choice see 1"
    assert feed(["*", "*", " ", "."]) == []
