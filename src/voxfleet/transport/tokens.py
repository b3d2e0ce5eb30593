"""Call-scoped, expiring tokens: ``<payload>.<signature>``, where the payload
names the call and the expiry and the signature is HMAC-SHA256 with a key
derived from the server's secret key and the token's kind. Any landing replica
with the same secret can check them.

Three kinds: a media token (in ``media_url``) opens the call's socket; a resume
token (in ``ready``'s ``resume_url``) re-opens it after a drop, on any landing;
a read token (``read_token`` of ``POST /api/calls``) reads the call's record.
Each kind has its own derived key, so a token of one kind never passes as
another.

Hand-written rather than itsdangerous: the format is a few lines of stdlib
``hmac``, and the tests need to issue tokens at a given time (expired ones) and
tell a foreign token from a forged one, which itsdangerous's timestamped
serializer does not expose."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import ClassVar

from voxfleet.errors import AuthError, Forbidden


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CallTokens:
    kind: ClassVar[str]

    def __init__(self, secret: str, ttl_seconds: int) -> None:
        self._key = hashlib.sha256(
            f"voxfleet-{self.kind}-token:".encode() + secret.encode()
        ).digest()
        self.ttl = ttl_seconds

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def issue(self, call_id: str, now: float, **claims: int) -> tuple[str, float]:
        """A token for ``call_id`` carrying ``claims`` (short names, integers),
        and when it expires."""
        expires = now + self.ttl
        body = {"c": call_id, "e": int(expires), **claims}
        payload = _b64(json.dumps(body, separators=(",", ":")).encode())
        return f"{payload}.{self._sign(payload)}", float(int(expires))

    def verify(self, token: str, call_id: str, now: float) -> dict[str, object]:
        """The token's claims. Raise AuthError (code ``token_invalid`` or
        ``token_expired``) or Forbidden (code ``token_foreign``) unless ``token``
        admits to ``call_id`` now."""
        payload, _, signature = token.partition(".")
        if (
            not token.isascii()
            or not payload
            or not signature
            or not hmac.compare_digest(signature, self._sign(payload))
        ):
            raise AuthError(f"token: not a valid {self.kind} token", code="token_invalid")
        try:
            body = json.loads(_unb64(payload))
            token_call, expires = str(body["c"]), float(body["e"])
        except (ValueError, KeyError, TypeError) as e:
            raise AuthError("token: malformed payload", code="token_invalid") from e
        if token_call != call_id:
            raise Forbidden("token: issued for another call", code="token_foreign")
        if now > expires:
            raise AuthError("token: expired; create a new call", code="token_expired")
        return {k: v for k, v in body.items() if k not in ("c", "e")}


class MediaTokens(CallTokens):
    """Opens the call's media socket, for a short while (the query string of ``media_url``)."""

    kind = "media"


class ResumeTokens(CallTokens):
    """Re-opens the call's socket after it dropped, on any landing replica: the
    ``resume_url`` of ``ready``. Claims: ``s``, the socket it takes over from;
    ``r``, the agent audio's sample rate (for the new socket's ``ready``)."""

    kind = "resume"


class ReadTokens(CallTokens):
    """Reads the call's record (``GET /api/calls/{id}``); only its creator gets one."""

    kind = "read"
