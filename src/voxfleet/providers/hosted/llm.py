"""Streaming chat completions with tool calls on an endpoint's ``llm`` model
(an Azure deployment, or a model name)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import cast

from openai import AsyncOpenAI, omit
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

from voxfleet.providers.base import LLM, Capabilities
from voxfleet.providers.chat import ChatMessage, GenerationParams, Piece, ToolCall, ToolSpec
from voxfleet.providers.endpoints import Endpoint
from voxfleet.providers.hosted.client import sdk_errors


def wire_message(message: ChatMessage) -> ChatCompletionMessageParam:
    """A chat message in the Chat Completions wire format."""
    out: dict[str, object] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        out["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in message.tool_calls
        ]
    if message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
    # The role decides which of the SDK's message types this is; the wire format is the same.
    return cast(ChatCompletionMessageParam, out)


def wire_tool(tool: ToolSpec) -> ChatCompletionToolParam:
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.parameters,
        },
    }


class HostedLLM(LLM):
    def __init__(self, endpoint: Endpoint, client: AsyncOpenAI) -> None:
        self.name = endpoint.name
        self._model = self.model = endpoint.model("llm")
        self._client = client
        self.capabilities = Capabilities(streaming=True, tools=endpoint.tools)
        self.timeout = endpoint.first_token_seconds
        self.stall_timeout = endpoint.stall_seconds
        self.attempts = endpoint.attempts

    async def close(self) -> None:
        await self._client.close()  # shared by the endpoint's providers; closing twice is fine

    async def _stream(
        self, messages: Sequence[ChatMessage], params: GenerationParams, tools: Sequence[ToolSpec]
    ) -> AsyncGenerator[Piece, None]:
        calls: dict[int, dict[str, str]] = {}
        with sdk_errors(self.name, "chat"):
            stream = await self._client.chat.completions.create(
                model=self._model,
                messages=[wire_message(m) for m in messages],
                stream=True,
                temperature=params.temperature,
                top_p=params.top_p,
                max_tokens=params.max_tokens,
                tools=[wire_tool(t) for t in tools] if tools else omit,
            )
            try:
                async for chunk in stream:
                    if not chunk.choices:
                        continue  # Azure's content-filter preamble, usage chunks
                    delta = chunk.choices[0].delta
                    if delta.content:
                        yield delta.content
                    for part in delta.tool_calls or ():
                        if not calls:
                            yield ""  # the model has started: its first-token deadline is met
                        call = calls.setdefault(part.index, {"id": "", "name": "", "args": ""})
                        call["id"] = part.id or call["id"]
                        if part.function is not None:
                            call["name"] += part.function.name or ""
                            call["args"] += part.function.arguments or ""
            finally:
                await stream.close()
        for index in sorted(calls):
            call = calls[index]
            yield ToolCall(
                id=call["id"] or f"call_{index}", name=call["name"], arguments=call["args"]
            )
