"""What one reply did, kept for its trace: when each provider call (STT, an
LLM stream, a TTS chunk) started and ended, and the faults it met. A reply
fills one ``ReplyRecord`` (a few entries per turn, never one per frame);
observability/tracing.py turns it into spans once the turn is over, and only
when traces are exported."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from voxfleet.errors import VoxfleetError
from voxfleet.providers.faults import ProviderFault


@dataclass(slots=True)
class Stage:
    """One provider call of a reply; times are epoch seconds."""

    kind: str  # stt, llm, tts
    provider: str
    model: str
    start: float
    end: float = 0.0
    error: str = ""  # the error code when it failed


@dataclass(slots=True, frozen=True)
class FaultMark:
    at: float
    fault: ProviderFault


@dataclass(slots=True)
class ReplyRecord:
    created_at: float
    stages: list[Stage] = field(default_factory=list)
    faults: list[FaultMark] = field(default_factory=list)
    _blamed: BaseException | None = None  # the error a stage inside another already took

    @contextlib.contextmanager
    def timing(
        self, kind: str, provider: str, model: str, clock: Callable[[], float]
    ) -> Iterator[Stage]:
        """Time the block as one stage; an exception marks it failed and goes on.
        Stages nest (a reply synthesizes while the LLM streams): an error is
        blamed on the innermost stage it came from, not on the LLM around it."""
        stage = Stage(kind, provider, model, clock())
        self.stages.append(stage)
        try:
            yield stage
        except BaseException as e:
            if e is not self._blamed:
                self._blamed = e
                stage.error = e.code if isinstance(e, VoxfleetError) else type(e).__name__
            raise
        finally:
            stage.end = clock()

    def fault(self, fault: ProviderFault, at: float) -> None:
        self.faults.append(FaultMark(at, fault))
