"""What an LLM is given and gives back: chat messages, tool calls, the tools
it may call, and the generation settings. Plain values, independent of any
provider's wire format."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(slots=True, frozen=True)
class ToolCall:
    """The model asks for tool ``name`` with ``arguments`` (a JSON object as
    text, as the model wrote it: it may be malformed)."""

    id: str
    name: str
    arguments: str

    def parsed_arguments(self) -> dict[str, object]:
        """The arguments as a dict; {} when the model wrote no valid JSON object."""
        try:
            value = json.loads(self.arguments or "{}")
        except json.JSONDecodeError:
            return {}
        return value if isinstance(value, dict) else {}


@dataclass(slots=True, frozen=True)
class ChatMessage:
    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...] = ()  # an assistant message that called tools
    tool_call_id: str | None = None  # a tool message: the call it answers


@dataclass(slots=True, frozen=True)
class ToolSpec:
    """A tool offered to the model: its name, what it does, and its parameters
    as a JSON Schema object."""

    name: str
    description: str
    parameters: dict[str, object] = field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )


@dataclass(slots=True, frozen=True)
class GenerationParams:
    temperature: float
    top_p: float
    max_tokens: int
    repeat_penalty: float = 1.0
    seed: int | None = None  # of the random draw (a local model's); None: a fresh one


def plain_messages(messages: Sequence[ChatMessage]) -> list[dict[str, str]]:
    """The messages for a model that knows no tools: a tool's result becomes a
    note in the conversation, a call to one disappears (a fallback may inherit
    a conversation in which a hosted model used tools)."""
    plain: list[dict[str, str]] = []
    for m in messages:
        if m.role == "tool":
            plain.append({"role": "user", "content": f"(lookup result: {m.content})"})
        elif m.content or not m.tool_calls:
            plain.append({"role": m.role, "content": m.content})
    return plain


# One piece of a streamed reply: text to speak, or a tool the model calls.
Piece = str | ToolCall
