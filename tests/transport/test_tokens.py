"""Media and read tokens: what one replica issues another with the same key accepts,
for that call only and until it expires; anything else (a token of the other
kind included) is refused with a precise code."""

from __future__ import annotations

import pytest

from voxfleet.errors import AuthError, Forbidden
from voxfleet.transport.tokens import CallTokens, MediaTokens, ReadTokens

pytestmark = pytest.mark.unit

SECRET = "a-production-secret-of-32-chars!"
CALL = "c_abcdefghijklmnop"
T0 = 1_717_000_000.0
TTL = 120


@pytest.fixture
def tokens() -> MediaTokens:
    return MediaTokens(SECRET, TTL)


def refused(tokens: CallTokens, token: str, call_id: str = CALL, now: float = T0) -> str:
    with pytest.raises(AuthError) as excinfo:
        tokens.verify(token, call_id, now)
    return excinfo.value.code


def flip_last(text: str) -> str:
    return text[:-1] + ("A" if text[-1] != "A" else "B")


def test_round_trip(tokens: MediaTokens) -> None:
    token, expires = tokens.issue(CALL, T0)
    assert expires == T0 + TTL
    tokens.verify(token, CALL, T0)
    tokens.verify(token, CALL, expires - 0.001)


def test_another_replica_with_the_same_key_accepts_it(tokens: MediaTokens) -> None:
    token, _ = tokens.issue(CALL, T0)
    MediaTokens(SECRET, TTL).verify(token, CALL, T0 + 1)


def test_expired(tokens: MediaTokens) -> None:
    token, expires = tokens.issue(CALL, T0)
    assert refused(tokens, token, now=expires + 0.001) == "token_expired"
    assert refused(tokens, token, now=expires + 3600) == "token_expired"


def test_returned_expiry_is_the_one_enforced(tokens: MediaTokens) -> None:
    # A fractional issue time: the client must be told the expiry the token carries.
    token, expires = tokens.issue(CALL, T0 + 0.75)
    tokens.verify(token, CALL, expires - 0.001)
    assert refused(tokens, token, now=expires + 0.001) == "token_expired"


def test_other_call_is_foreign(tokens: MediaTokens) -> None:
    token, _ = tokens.issue(CALL, T0)
    assert refused(tokens, token, call_id="c_someoneelse") == "token_foreign"


def test_tampered_payload_is_invalid(tokens: MediaTokens) -> None:
    token, _ = tokens.issue(CALL, T0)
    payload, signature = token.split(".")
    assert refused(tokens, f"{flip_last(payload)}.{signature}") == "token_invalid"


def test_payload_of_another_token_with_this_signature_is_invalid(tokens: MediaTokens) -> None:
    mine, _ = tokens.issue(CALL, T0)
    theirs, _ = tokens.issue("c_someoneelse", T0)
    forged = f"{theirs.split('.')[0]}.{mine.split('.')[1]}"
    assert refused(tokens, forged, call_id="c_someoneelse") == "token_invalid"


def test_longer_expiry_spliced_in_is_invalid(tokens: MediaTokens) -> None:
    token, _ = tokens.issue(CALL, T0)
    later, _ = tokens.issue(CALL, T0 + 86_400)
    forged = f"{later.split('.')[0]}.{token.split('.')[1]}"
    assert refused(tokens, forged) == "token_invalid"


def test_tampered_signature_is_invalid(tokens: MediaTokens) -> None:
    token, _ = tokens.issue(CALL, T0)
    assert refused(tokens, flip_last(token)) == "token_invalid"
    assert refused(tokens, token + "A") == "token_invalid"


@pytest.mark.parametrize(
    "token",
    ["garbage", "", ".", "payload.", ".signature", "a.b.c", "not a token at all!", "%%%.%%%"],
)
def test_garbage_is_invalid(tokens: MediaTokens, token: str) -> None:
    assert refused(tokens, token) == "token_invalid"


def test_missing_dot_is_invalid(tokens: MediaTokens) -> None:
    token, _ = tokens.issue(CALL, T0)
    assert refused(tokens, token.replace(".", "")) == "token_invalid"


def test_token_signed_with_another_secret_is_invalid(tokens: MediaTokens) -> None:
    token, _ = MediaTokens("another-secret-of-32-characters!", TTL).issue(CALL, T0)
    assert refused(tokens, token) == "token_invalid"


def test_non_ascii_signature_is_invalid(tokens: MediaTokens) -> None:
    token, _ = tokens.issue(CALL, T0)
    assert refused(tokens, token[:-1] + "\u00e9") == "token_invalid"


def test_a_foreign_token_is_forbidden_not_unauthorized(tokens: MediaTokens) -> None:
    token, _ = tokens.issue(CALL, T0)
    with pytest.raises(Forbidden):
        tokens.verify(token, "c_someoneelse", T0)


def test_read_tokens_round_trip_with_their_own_ttl() -> None:
    reads = ReadTokens(SECRET, 86_400)
    token, expires = reads.issue(CALL, T0)
    assert expires == T0 + 86_400
    ReadTokens(SECRET, 86_400).verify(token, CALL, expires - 1)
    assert refused(reads, token, now=expires + 1) == "token_expired"


def test_a_token_of_one_kind_never_passes_as_the_other(tokens: MediaTokens) -> None:
    reads = ReadTokens(SECRET, TTL)
    media, _ = tokens.issue(CALL, T0)
    read, _ = reads.issue(CALL, T0)
    assert media != read
    assert refused(reads, media) == "token_invalid"
    assert refused(tokens, read) == "token_invalid"
