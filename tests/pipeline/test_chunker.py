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


def test_first_chunk_may_end_at_a_clause() -> None:
    pieces = [
        "Sure",
        ",",
        " we",
        " open",
        " at",
        " seven",
        ",",
        " and",
        " close",
        " at",
        " six",
        ".",
    ]
    assert feed(pieces) == ["Sure, we open at seven,", "and close at six."]


def test_later_chunks_end_at_sentences() -> None:
    text = "Yes. It costs three dollars, plus tax, today. Bye"
    assert feed(list(text)) == ["Yes.", "It costs three dollars, plus tax, today.", "Bye"]


def test_decimal_points_and_abbreviations_mid_token_are_not_cut() -> None:
    assert feed(["It is 3.5 km", " away."]) == ["It is 3.5 km away."]


def test_boundary_waits_for_following_whitespace() -> None:
    chunker = ClauseChunker()
    assert chunker.push("Hello there.") == []  # could still be "there.com"
    assert chunker.push(" Next") == ["Hello there."]


def test_markup_and_emoji_are_not_spoken() -> None:
    assert speakable("**Great** choice 😀 see https://x.io #1") == "Great choice see 1"
    assert feed(["*", "*", " ", "."]) == []
