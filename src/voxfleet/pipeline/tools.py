"""The tools an agent profile may give its model: ``end_call`` (hang up once
the reply is spoken) and ``lookup`` (search the profile's knowledge snippets).
Every call is answered, a wrong one with an error the model can read, and is
recorded on the turn (``Turn.tools``)."""

from __future__ import annotations

import re
from typing import Final

from voxfleet.domain.calls import ToolUse
from voxfleet.domain.profiles import Profile, Snippet
from voxfleet.providers.chat import ToolCall, ToolSpec

MAX_ROUNDS: Final = 3  # model turns that may call tools in one reply; then it must answer
LOOKUP_RESULTS: Final = 2
_WORD = re.compile(r"[a-z0-9]{3,}")

SPECS: Final[dict[str, ToolSpec]] = {
    "end_call": ToolSpec(
        "end_call",
        "End the phone call. Call it when the caller says goodbye or asks to hang up, "
        "and say a short goodbye in the same reply.",
        {
            "type": "object",
            "properties": {"reason": {"type": "string", "description": "Why, in a few words."}},
        },
    ),
    "lookup": ToolSpec(
        "lookup",
        "Look up facts in this business's knowledge base before answering a question about it.",
        {
            "type": "object",
            "properties": {"query": {"type": "string", "description": "What to look up."}},
            "required": ["query"],
        },
    ),
}


class Toolbox:
    """The tools of one reply."""

    def __init__(self, profile: Profile) -> None:
        self.specs = [SPECS[name] for name in profile.tools]
        self._knowledge = profile.knowledge
        self.uses: list[ToolUse] = []
        self.end_requested = False

    def run(self, call: ToolCall) -> str:
        """Run ``call`` and return what the model is told."""
        arguments = call.parsed_arguments()
        if call.name not in {spec.name for spec in self.specs}:
            result = f"error: there is no tool named {call.name!r}"
        elif call.name == "end_call":
            self.end_requested = True
            result = "The call will end after this reply. Say goodbye."
        else:
            query = arguments.get("query")
            if not isinstance(query, str) or not query.strip():
                result = "error: lookup needs a non-empty 'query' string"
            else:
                result = self._lookup(query)
        self.uses.append(ToolUse(name=call.name, arguments=arguments, result=result))
        return result

    def _lookup(self, query: str) -> str:
        wanted = set(_WORD.findall(query.lower()))
        scored = [(len(wanted & _words(s)), i, s) for i, s in enumerate(self._knowledge)]
        best = sorted((x for x in scored if x[0] > 0), key=lambda x: (-x[0], x[1]))
        if not best:
            return "Nothing in the knowledge base matches that."
        return "\n".join(f"{s.title}: {s.text}" for _, _, s in best[:LOOKUP_RESULTS])


def _words(snippet: Snippet) -> set[str]:
    return set(_WORD.findall(f"{snippet.title} {snippet.text}".lower()))
