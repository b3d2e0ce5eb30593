"""The hosted LLM provider against a real OpenAI-compatible server: llama-cpp-
python's own server (PyPI, the ``server`` extra) with the SmolLM2 model, run
by the test. The same provider talks to Azure OpenAI and vLLM."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.server import free_port
from voxfleet.providers.chat import ChatMessage, GenerationParams
from voxfleet.providers.endpoints import Endpoint
from voxfleet.providers.hosted.client import make_client
from voxfleet.providers.hosted.llm import HostedLLM

pytestmark = pytest.mark.integration

# ``python -m llama_cpp.server``, its model opened as voxfleet opens it
# (providers/local/gguf.py: plain buffers, which a CPU with AMX needs).
LAUNCH = (
    "import runpy\n"
    "from voxfleet.providers.local.gguf import plain_buffers\n"
    "with plain_buffers():\n"
    "    runpy.run_module('llama_cpp.server', run_name='__main__', alter_sys=True)\n"
)


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] (the dev extra)")
    from voxfleet.providers.local.gguf import model_path

    port = free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                LAUNCH,
                "--model",
                str(model_path()),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--n_ctx",
                "1024",
                "--n_threads",
                "1",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}/v1"
        try:
            _wait_ready(url, proc, log)
            yield url
        finally:
            proc.terminate()
            proc.wait(10)


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"llama-cpp server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/models", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError("llama-cpp server not ready in 60 s")


async def test_a_real_openai_compatible_server_streams_a_reply(llama_server: str) -> None:
    endpoint = Endpoint(
        name="llama", url=llama_server, auth="none", llm="smollm2", first_token_seconds=20
    )
    client = make_client(endpoint)
    llm = HostedLLM(endpoint, client)
    messages = [
        ChatMessage("system", "You are a helpful assistant. Answer in one short sentence."),
        ChatMessage("user", "What color is the sky on a clear day?"),
    ]
    try:
        pieces = [
            p
            async for p in llm.stream(
                messages, GenerationParams(temperature=0.0, top_p=1.0, max_tokens=24)
            )
        ]
    finally:
        await client.close()
    text = "".join(p for p in pieces if isinstance(p, str))
    assert len(pieces) > 3, pieces  # streamed piece by piece, not in one block
    assert "blue" in text.lower(), text
