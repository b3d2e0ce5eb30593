"""CallStore: calls and their turns, persisted. The API records a call's life here
and the agent its turns; the API reads them back for ``GET /api/calls/{id}``.

Domain types go in and come out: epoch-second floats become UTC datetimes (and
back) only at this edge, and database errors become voxfleet errors.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import exc as sa_exc
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.dml import Insert, Update

from voxfleet.domain.calls import CallStatus, EndReason, LatencyMarks, Speaker, ToolUse, Turn
from voxfleet.errors import NotFound, VoxfleetError
from voxfleet.store.db import translate_unavailable
from voxfleet.store.models import CallRow, TurnRow

# Columns a rewrite of the same (call_id, seq) replaces; the identity stays.
_TURN_UPDATABLE = (
    "speaker",
    "text",
    "interrupted",
    "started_at",
    "ended_at",
    "speech_end_at",
    "stt_done_at",
    "llm_first_token_at",
    "tts_first_audio_at",
    "first_audio_sent_at",
    "tools",
)


@dataclass(frozen=True, slots=True)
class CallRecord:
    """A call as stored; times are epoch seconds."""

    id: str
    profile: str
    status: CallStatus
    created_at: float
    started_at: float | None
    ended_at: float | None
    end_reason: EndReason | None
    turns: list[Turn] = field(default_factory=list)


class CallStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def create_call(self, call_id: str, profile: str, created_at: float) -> None:
        row = CallRow(
            id=call_id,
            profile=profile,
            status=CallStatus.CREATED.value,
            created_at=_to_datetime(created_at),
        )
        try:
            async with self._transaction() as session:
                session.add(row)
        except sa_exc.IntegrityError as e:
            raise VoxfleetError(f"call {call_id!r} already exists", code="conflict") from e

    async def mark_active(self, call_id: str, at: float) -> bool:
        """created -> active. False, and nothing changed, from any other status."""
        statement = (
            update(CallRow)
            .where(CallRow.id == call_id, CallRow.status == CallStatus.CREATED.value)
            .values(status=CallStatus.ACTIVE.value, started_at=_to_datetime(at))
        )
        return await self._rows_changed(statement) == 1

    async def end_call(self, call_id: str, reason: EndReason, at: float) -> bool:
        """End the call. False when it had already ended: the first reason and time stay."""
        # One conditional UPDATE, so two racing enders cannot both win.
        statement = (
            update(CallRow)
            .where(CallRow.id == call_id, CallRow.status != CallStatus.ENDED.value)
            .values(
                status=CallStatus.ENDED.value,
                ended_at=_to_datetime(at),
                end_reason=reason.value,
            )
        )
        return await self._rows_changed(statement) == 1

    async def add_turn(self, turn: Turn) -> None:
        """Write a turn; writing the same (call_id, seq) again replaces it.

        A retried write, or an agent resuming a room, may send a turn twice.
        """
        values = {
            "call_id": turn.call_id,
            "seq": turn.seq,
            "speaker": turn.speaker.value,
            "text": turn.text,
            "interrupted": turn.interrupted,
            "started_at": _to_datetime(turn.started_at),
            "ended_at": _to_datetime(turn.ended_at),
            "speech_end_at": _to_optional_datetime(turn.marks.speech_end),
            "stt_done_at": _to_optional_datetime(turn.marks.stt_done),
            "llm_first_token_at": _to_optional_datetime(turn.marks.llm_first_token),
            "tts_first_audio_at": _to_optional_datetime(turn.marks.tts_first_audio),
            "first_audio_sent_at": _to_optional_datetime(turn.marks.first_audio_sent),
            "tools": [use.as_dict() for use in turn.tools] or None,
        }
        try:
            async with self._transaction() as session:
                dialect = session.get_bind().dialect.name
                await session.execute(_upsert_turn(dialect, values))
        except sa_exc.IntegrityError as e:
            # (call_id, seq) conflicts are absorbed by the upsert; what is left is
            # the foreign key: the call does not exist.
            raise NotFound(f"call {turn.call_id!r} not found") from e

    async def get_call(self, call_id: str) -> CallRecord | None:
        async with self._transaction() as session:
            row = await session.get(CallRow, call_id)
            if row is None:
                return None
            turns = await session.scalars(
                select(TurnRow).where(TurnRow.call_id == call_id).order_by(TurnRow.seq)
            )
            return _to_record(row, turns.all())

    async def list_calls(self, limit: int = 50) -> list[CallRecord]:
        """The newest calls first, without their turns."""
        if limit < 1:
            raise ValueError(f"limit: must be at least 1, got {limit}")
        statement = (
            select(CallRow).order_by(CallRow.created_at.desc(), CallRow.id.desc()).limit(limit)
        )
        async with self._transaction() as session:
            rows = await session.scalars(statement)
            return [_to_record(row, ()) for row in rows]

    async def end_stale_calls(self, reason: EndReason, at: float, older_than: float) -> int:
        """End every call still ``created`` that was created before ``older_than``.

        Closes the calls whose token expired before a caller ever connected.
        Returns how many were ended.
        """
        statement = (
            update(CallRow)
            .where(
                CallRow.status == CallStatus.CREATED.value,
                CallRow.created_at < _to_datetime(older_than),
            )
            .values(
                status=CallStatus.ENDED.value,
                ended_at=_to_datetime(at),
                end_reason=reason.value,
            )
        )
        return await self._rows_changed(statement)

    async def _rows_changed(self, statement: Update) -> int:
        async with self._transaction() as session:
            # A Core execution, whose result reports how many rows the UPDATE hit.
            connection = await session.connection()
            result = await connection.execute(statement)
        return result.rowcount

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction, committed on success, rolled back on error."""
        with translate_unavailable():
            async with self._sessions.begin() as session:
                yield session


def _upsert_turn(dialect: str, values: dict[str, object]) -> Insert:
    # Both dialects spell the upsert the same way but build it from their own insert().
    if dialect == "postgresql":
        pg_insert = postgresql.insert(TurnRow).values(values)
        return pg_insert.on_conflict_do_update(
            index_elements=[TurnRow.call_id, TurnRow.seq],
            set_={name: pg_insert.excluded[name] for name in _TURN_UPDATABLE},
        )
    if dialect == "sqlite":
        sqlite_insert = sqlite.insert(TurnRow).values(values)
        return sqlite_insert.on_conflict_do_update(
            index_elements=[TurnRow.call_id, TurnRow.seq],
            set_={name: sqlite_insert.excluded[name] for name in _TURN_UPDATABLE},
        )
    raise NotImplementedError(f"no upsert for the {dialect!r} dialect")


def _to_record(row: CallRow, turns: Sequence[TurnRow]) -> CallRecord:
    return CallRecord(
        id=row.id,
        profile=row.profile,
        status=CallStatus(row.status),
        created_at=_to_epoch(row.created_at),
        started_at=_to_optional_epoch(row.started_at),
        ended_at=_to_optional_epoch(row.ended_at),
        end_reason=None if row.end_reason is None else EndReason(row.end_reason),
        turns=[_to_turn(turn) for turn in turns],
    )


def _to_turn(row: TurnRow) -> Turn:
    return Turn(
        call_id=row.call_id,
        seq=row.seq,
        speaker=Speaker(row.speaker),
        text=row.text,
        started_at=_to_epoch(row.started_at),
        ended_at=_to_epoch(row.ended_at),
        interrupted=row.interrupted,
        marks=LatencyMarks(
            speech_end=_to_optional_epoch(row.speech_end_at),
            stt_done=_to_optional_epoch(row.stt_done_at),
            llm_first_token=_to_optional_epoch(row.llm_first_token_at),
            tts_first_audio=_to_optional_epoch(row.tts_first_audio_at),
            first_audio_sent=_to_optional_epoch(row.first_audio_sent_at),
        ),
        tools=[ToolUse(u["name"], u.get("arguments", {}), u["result"]) for u in row.tools or ()],
    )


def _to_datetime(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def _to_optional_datetime(epoch: float | None) -> datetime | None:
    return None if epoch is None else _to_datetime(epoch)


def _to_epoch(value: datetime) -> float:
    # SQLite keeps no zone and gives back naive datetimes; everything stored is UTC.
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def _to_optional_epoch(value: datetime | None) -> float | None:
    return None if value is None else _to_epoch(value)
