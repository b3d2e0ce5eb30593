"""Room-scoped, short-lived media tokens: ``<payload>.<signature>``, where the
payload names the call and the expiry and the signature is HMAC-SHA256 with the
server's secret key. Any landing replica with the same key can check them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from voxfleet.errors import AuthError


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class MediaTokens:
    def __init__(self, secret: str, ttl_seconds: int) -> None:
        self._key = hashlib.sha256(b"voxfleet-media-token:" + secret.encode()).digest()
        self.ttl = ttl_seconds

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def issue(self, call_id: str, now: float) -> tuple[str, float]:
        expires = now + self.ttl
        payload = _b64(
            json.dumps({"c": call_id, "e": int(expires)}, separators=(",", ":")).encode()
        )
        return f"{payload}.{self._sign(payload)}", float(int(expires))

    def verify(self, token: str, call_id: str, now: float) -> None:
        """Raise AuthError (code ``token_invalid``, ``token_expired`` or
        ``token_foreign``) unless ``token`` admits to ``call_id`` now."""
        payload, _, signature = token.partition(".")
        if (
            not token.isascii()
            or not payload
            or not signature
            or not hmac.compare_digest(signature, self._sign(payload))
        ):
            raise AuthError("token: not a valid media token", code="token_invalid")
        try:
            body = json.loads(_unb64(payload))
            token_call, expires = str(body["c"]), float(body["e"])
        except (ValueError, KeyError, TypeError) as e:
            raise AuthError("token: malformed payload", code="token_invalid") from e
        if token_call != call_id:
            raise AuthError("token: issued for another call", code="token_foreign")
        if now > expires:
            raise AuthError("token: expired; create a new call", code="token_expired")
