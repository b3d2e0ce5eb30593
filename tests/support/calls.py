"""What a test caller does and checks on a call through the public API: wait
for a final caption, take a turn of scripted "speech" (a tone the scripted STT
names by its length), and check that every reply was heard whole, once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from tests.audio import silence, tone
from tests.support.server import ADMIN_KEY
from voxfleet.client import CallClient

SCRIPTED_RATE = 16000  # ScriptedTTS's sample rate
SAMPLES_PER_CHAR = 960  # ScriptedTTS: 60 ms of tone per character other than a space


def final(role: str, seq: int) -> Callable[[dict[str, Any]], bool]:
    def match(m: dict[str, Any]) -> bool:
        return bool(
            m["type"] == "transcript" and m["role"] == role and m["final"] and m["seq"] == seq
        )

    return match


async def greeted_call(
    base: str, timeout: float = 15.0, admin_key: str | None = ADMIN_KEY
) -> CallClient:
    """A started call whose greeting was heard. It reads its record with the
    test servers' admin key: a read token reads a call only while it is live."""
    call = CallClient(base, admin_key=admin_key)
    await call.start()
    await call.wait_for(final("agent", 0), timeout=timeout)
    return call


async def turn(call: CallClient, seconds: float, seq: int, timeout: float = 20.0) -> dict[str, Any]:
    """Say ``seconds`` of 'speech'; wait for the reply to finish."""
    await call.send_audio(tone(seconds) + silence(0.6))
    heard = await call.wait_for(final("user", seq), timeout=timeout)
    assert heard["text"] == f"utterance {seconds:.1f} seconds", heard
    return await call.wait_for(final("agent", seq + 1), timeout=timeout)


async def stored(
    call: CallClient, turns: int, ended: bool = True, timeout: float = 10.0
) -> dict[str, Any]:
    """The call's record once it holds ``turns`` turns (and has ended): the
    agents' turn sinks write in the background, a moment after the caption.
    Reading an ended call needs ``call.admin_key``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        record = await call.get_call()
        done = len(record["turns"]) >= turns and (record["status"] == "ended" or not ended)
        if done or asyncio.get_running_loop().time() > deadline:
            return record
        await asyncio.sleep(0.1)


def expected_audio_bytes(text: str) -> int:
    """What ScriptedTTS makes of a reply's text, in bytes of PCM16."""
    return SAMPLES_PER_CHAR * len(text.replace(" ", "")) * 2


def replies_heard(call: CallClient) -> list[tuple[dict[str, Any], int]]:
    """Each agent turn's final transcript with the bytes of agent audio that
    arrived since the turn before it (all of a reply's audio comes before its
    final transcript)."""
    out: list[tuple[dict[str, Any], int]] = []
    audio = 0
    for item in call.received:
        if isinstance(item, int):
            audio += item
        elif item["type"] == "transcript" and item["role"] == "agent" and item["final"]:
            out.append((item, audio))
            audio = 0
    return out


def assert_every_reply_heard_whole(call: CallClient) -> None:
    """Each agent turn's audio arrived exactly once: not a 20 ms frame missing
    or doubled, and no final caption twice."""
    replies = replies_heard(call)
    seqs = [m["seq"] for m, _ in replies]
    assert len(seqs) == len(set(seqs)), f"a final caption came twice: {seqs}"
    for message, audio in replies:
        want = expected_audio_bytes(message["text"])
        assert audio == want, (
            f"reply {message['seq']} ({message['text']!r}): heard {audio} bytes of audio, "
            f"made {want} ({(audio - want) / 640:+.1f} frames of 20 ms)"
        )
