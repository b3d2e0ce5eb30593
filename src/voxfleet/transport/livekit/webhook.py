"""LiveKit's webhooks, checked before anything is believed: the
``Authorization`` header is a JWT signed with our API secret that carries the
body's sha256 (checked by livekit-api's TokenVerifier and WebhookReceiver),
the event is younger than ``livekit_webhook_max_age_seconds`` and its id was
not taken before. Whatever fails is refused with a code naming what is wrong."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import jwt
from google.protobuf.json_format import ParseError
from livekit.api import TokenVerifier, WebhookReceiver
from livekit.protocol.webhook import WebhookEvent

from voxfleet.errors import AuthError, MalformedRequest, VoxfleetError
from voxfleet.observability.logging import get_logger
from voxfleet.observability.metrics import LIVEKIT_WEBHOOKS
from voxfleet.transport.livekit.seen import SeenEvents

log = get_logger(__name__)
FUTURE_SKEW_S = 60  # an event this far ahead of our clock is no clock skew


@dataclass(slots=True, frozen=True)
class WebhookCheck:
    api_key: str
    api_secret: str
    max_age_seconds: int


class WebhookRefused(AuthError, code="webhook_refused"):
    """A webhook whose signature, body, age or id is not right (HTTP 401)."""


class WebhookVerifier:
    def __init__(self, check: WebhookCheck, seen: SeenEvents) -> None:
        self._verifier = TokenVerifier(check.api_key, check.api_secret)
        self._receiver = WebhookReceiver(self._verifier)
        self._max_age = check.max_age_seconds
        self._seen = seen

    async def verify(self, body: bytes, authorization: str | None) -> WebhookEvent:
        """The event, once signature, body, age and id are right; else
        WebhookRefused (401) or MalformedRequest (400, a signed body that is
        not a webhook event)."""
        event = self._signed_event(body, authorization)
        now = time.time()
        if event.created_at <= 0:
            raise _refused("webhook_stale", "created_at: missing; cannot tell the event's age")
        age = now - event.created_at
        if age > self._max_age:
            raise _refused(
                "webhook_stale",
                f"created_at: the event is {int(age)} s old, older than "
                f"{self._max_age} s (VOXFLEET_LIVEKIT_WEBHOOK_MAX_AGE_SECONDS)",
            )
        if age < -FUTURE_SKEW_S:
            raise _refused("webhook_stale", "created_at: the event is dated in the future")
        if not event.id:
            raise _refused("webhook_replayed", "id: missing; cannot tell a replay")
        # Kept past the max age (and its leeway): an older replay is refused as stale.
        if not await self._seen.first_time(event.id, self._max_age + FUTURE_SKEW_S):
            raise _refused("webhook_replayed", f"id: event {event.id[:64]!r} was already taken")
        return event

    async def failed(self, event: WebhookEvent) -> None:
        """The verified ``event`` could not be taken: let LiveKit's retry through."""
        with contextlib.suppress(VoxfleetError):
            await self._seen.forget(event.id)

    def _signed_event(self, body: bytes, authorization: str | None) -> WebhookEvent:
        token = (authorization or "").strip()
        if token.lower().startswith("bearer "):  # LiveKit sends the bare JWT; accept either
            token = token[7:].strip()
        if not token:
            raise _refused(
                "webhook_unsigned",
                "authorization: missing; LiveKit signs each webhook with the API key's secret",
            )
        try:
            claims = self._verifier.verify(token)
        except jwt.ExpiredSignatureError as e:
            raise _refused("webhook_signature", "authorization: the signature expired") from e
        except jwt.InvalidIssuerError as e:
            raise _refused("webhook_signature", "authorization: signed with another API key") from e
        except jwt.InvalidSignatureError as e:
            raise _refused(
                "webhook_signature", "authorization: signed with another API secret"
            ) from e
        except jwt.PyJWTError as e:
            raise _refused("webhook_signature", f"authorization: not a valid JWT ({e})") from e
        if not claims.sha256:
            raise _refused("webhook_signature", "authorization: the token signs no body (sha256)")
        try:
            text = body.decode()
        except UnicodeDecodeError as e:
            raise MalformedRequest("body: not UTF-8", code="invalid_json") from e
        try:
            return self._receiver.receive(text, token)
        except ParseError as e:
            raise MalformedRequest(
                f"body: not a LiveKit webhook event ({str(e)[:80]})", code="invalid_json"
            ) from e
        except Exception as e:  # the SDK raises a bare Exception on a hash mismatch
            raise _refused(
                "webhook_tampered", "body: does not match the signed sha256 (tampered)"
            ) from e


def _refused(code: str, message: str) -> WebhookRefused:
    LIVEKIT_WEBHOOKS.labels(code).inc()
    log.warning("livekit webhook refused", code=code, why=message)
    return WebhookRefused(message, code=code)
