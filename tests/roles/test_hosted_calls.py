"""Calls through the public API whose language model is a hosted endpoint of
the endpoints file (the openai SDK against the local stand-in), in a fallback
chain with the scripted model: settings, registry, chains, session, edge and
store together. The agent hangs up with its end-the-call tool; a hanging
endpoint costs the caller an apology, not the call."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.calls import assert_every_reply_heard_whole, greeted_call, stored, turn
from tests.support.openai_standin import StandIn, standin
from tests.support.server import app_server

pytestmark = pytest.mark.integration

PROFILES = """
[profile.desk]
greeting = "Hi."
system_prompt = "Be brief."
tools = ["lookup", "end_call"]

[[profile.desk.knowledge]]
title = "Opening hours"
text = "We are open 7 am to 6 pm every day."
"""


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[str, StandIn]]:
    async with standin() as stand:
        endpoints = tmp_path / "endpoints.toml"
        endpoints.write_text(
            f'[endpoint.standin]\nurl = "{stand.url}"\nauth = "none"\nllm = "m"\n'
            "first_token_seconds = 0.5\n"
        )
        profiles = tmp_path / "profiles.toml"
        profiles.write_text(PROFILES)
        async with app_server(
            tmp_path,
            endpoints_file=endpoints,
            llm="standin, scripted",
            profiles_file=profiles,
            default_profile="desk",
        ) as (base, _runtime):
            yield base, stand


async def test_the_agent_ends_the_call_after_its_goodbye(
    server: tuple[str, StandIn],
) -> None:
    base, stand = server
    stand.reply("Goodbye, have a nice day!", [{"name": "end_call", "arguments": {}}])
    call = await greeted_call(base)
    try:
        goodbye = await turn(call, 0.8, seq=1)
        code, _reason = await call.closed()
        record = await stored(call, turns=3)
    finally:
        await call.close()
    assert goodbye["text"] == "Goodbye, have a nice day!"
    assert [m["reason"] for m in call.messages if m["type"] == "ended"] == ["agent_ended"]
    assert code == 1000
    assert_every_reply_heard_whole(call)  # the goodbye was heard to its last frame
    assert record["status"] == "ended" and record["end_reason"] == "agent_ended"
    agent = [t for t in record["turns"] if t["speaker"] == "agent"]
    assert agent[-1]["tools"] == [
        {
            "name": "end_call",
            "arguments": {},
            "result": "The call will end after this reply. Say goodbye.",
        }
    ]
    offered = [t["function"]["name"] for t in stand.requests("chat")[-1].body["tools"]]
    assert offered == ["lookup", "end_call"]


async def test_a_hanging_endpoint_costs_an_apology_not_the_call(
    server: tuple[str, StandIn],
) -> None:
    base, stand = server
    stand.fail("chat", "hang")
    call = await greeted_call(base)
    try:
        first = await turn(call, 0.8, seq=1)
        second = await turn(call, 1.2, seq=3)
    finally:
        await call.end()
        await call.close()
    assert first["text"].startswith("Sorry, one moment. You said utterance 0.8 seconds")
    assert second["text"] == "You said utterance 1.2 seconds. Thanks, I got it."  # the endpoint
    assert_every_reply_heard_whole(call)  # the apology is audio made at start-up
    assert [m for m in call.messages if m["type"] == "error"] == []
