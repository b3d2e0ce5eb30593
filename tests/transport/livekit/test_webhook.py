"""The webhook checker on its own: a verified event is taken once; one whose
taking failed (answered 5xx) may come again, as LiveKit retries it; a signed
body that is no event is malformed, not forged."""

from __future__ import annotations

import pytest

from tests.support.livekit import KEY, SECRET, event, signature, signed
from voxfleet.errors import MalformedRequest
from voxfleet.transport.livekit.seen import InMemorySeenEvents
from voxfleet.transport.livekit.webhook import WebhookCheck, WebhookRefused, WebhookVerifier

pytestmark = pytest.mark.unit


def verifier() -> WebhookVerifier:
    return WebhookVerifier(WebhookCheck(KEY, SECRET, 300), InMemorySeenEvents())


async def test_an_event_whose_taking_failed_may_be_sent_again() -> None:
    check = verifier()
    body, headers = signed(event("room_finished", "c_AAAAAAAAAAAAAAAA"))
    taken = await check.verify(body.encode(), headers["Authorization"])
    with pytest.raises(WebhookRefused, match="already taken") as refused:
        await check.verify(body.encode(), headers["Authorization"])
    assert refused.value.code == "webhook_replayed"
    await check.failed(taken)
    again = await check.verify(body.encode(), "Bearer " + headers["Authorization"])
    assert again.id == taken.id


async def test_a_signed_body_that_is_no_event_is_malformed() -> None:
    check = verifier()
    with pytest.raises(MalformedRequest, match="not a LiveKit webhook event"):
        await check.verify(b"[1, 2]", signature("[1, 2]"))
    with pytest.raises(MalformedRequest, match="not UTF-8"):
        await check.verify(b"\xff\xfe", signature("x"))
