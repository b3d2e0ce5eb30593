"""No token or key reaches a log line: a real `voxfleet up` (scripted providers,
DEBUG logs) gets calls created, sockets opened with good, forged and foreign
tokens, calls read with read tokens and the admin key; then every line it
logged is searched for each secret it handed out or was sent."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.support.server import free_port, up_process_handle
from voxfleet.client import CallClient
from voxfleet.observability.logging import REDACTED, RedactSecrets, redact

pytestmark = pytest.mark.integration

ADMIN_KEY = "log-test-admin-key-0123456789abcdef"


async def exercise(base: str, admin: str) -> list[str]:
    """Everything that carries a secret, once; returns the secrets used."""
    secrets = [ADMIN_KEY]
    ws_base = base.replace("http", "ws")
    auth = {"Authorization": f"Bearer {ADMIN_KEY}"}
    for _ in range(2):
        call = CallClient(base)
        created = await call.create()
        media_token = created["media_url"].split("token=")[1]
        secrets += [media_token, created["read_token"]]
        await call.connect(created["media_url"])
        assert call.ws is not None and call.resume_url is not None
        secrets.append(call.resume_url.split("resume=")[1])
        call.ws.transport.abort()  # a drop: the client resumes with its resume URL
        await call.wait_for(lambda m: m["type"] == "ready", start=1)
        assert call.resume_url is not None
        secrets.append(call.resume_url.split("resume=")[1])
        await call.get_call()
        await call.end()
        await call.closed()
    forged = "eyJmb3JnZWQiOnRydWV9.not-a-signature-at-all"
    secrets.append(forged)
    with contextlib.suppress(Exception):
        async with connect(f"{ws_base}/ws/calls/{call.call_id}?token={forged}") as ws:
            await asyncio.wait_for(ws.recv(), 5)
    with contextlib.suppress(InvalidStatus):
        async with connect(
            f"{ws_base}/ws/calls/c_x?a=1&token={forged}", origin="https://evil.example"
        ):
            pass
    async with httpx.AsyncClient() as http:
        await http.get(f"{base}/api/calls/{call.call_id}", headers=auth)
        await http.get(
            f"{base}/api/calls/{call.call_id}", headers={"Authorization": f"Bearer {forged}"}
        )
        await http.get(f"{admin}/api/rooms", headers=auth)
        await http.get(f"{admin}/api/rooms", headers={"Authorization": f"Bearer {forged}"})
    return secrets


def test_no_log_line_of_a_running_server_holds_a_secret(tmp_path: Path) -> None:
    admin_port = free_port()
    env = {
        "VOXFLEET_PROVIDERS": "scripted",
        "VOXFLEET_LOG_LEVEL": "DEBUG",
        "VOXFLEET_ADMIN_PORT": str(admin_port),
        "VOXFLEET_ADMIN_API_KEY": ADMIN_KEY,
    }
    with up_process_handle(tmp_path, **env) as (base, proc):
        secrets = asyncio.run(exercise(base, f"http://127.0.0.1:{admin_port}"))
        proc.terminate()
        proc.wait(30)
    log = (tmp_path / "voxfleet-up.log").read_text()
    accepted = [line for line in log.splitlines() if '"WebSocket /ws/calls/' in line]
    assert len(accepted) >= 3, "the server logged no socket handshake: nothing was checked"
    assert all(f"token={REDACTED}" in line or f"resume={REDACTED}" in line for line in accepted), (
        accepted
    )
    assert any(f"resume={REDACTED}" in line for line in accepted), "no resume was checked"
    for secret in secrets:
        assert secret not in log


def test_redaction_covers_messages_arguments_fields_and_tracebacks() -> None:
    record = logging.makeLogRecord(
        {
            "msg": '%s - "WebSocket %s" [accepted]',
            "args": ("127.0.0.1:5000", "/ws/calls/c_1?token=abc.def&x=1"),
            "fields": {"media_token": "abc.def", "url": "/x?token=abc", "count": 3},
        }
    )
    try:
        raise ValueError("Authorization: Bearer sekret-value")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    assert RedactSecrets().filter(record)
    assert (
        record.getMessage()
        == f'127.0.0.1:5000 - "WebSocket /ws/calls/c_1?token={REDACTED}&x=1" [accepted]'
    )
    assert record.fields == {"media_token": REDACTED, "url": f"/x?token={REDACTED}", "count": 3}  # type: ignore[attr-defined]
    assert record.exc_text is not None and "sekret-value" not in record.exc_text
    assert redact("bearer  abc.def, next") == f"bearer  {REDACTED}, next"
