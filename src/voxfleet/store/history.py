"""CallHistory: the monitor's reads over stored calls (filters, keyset paging,
bounded export) and the call events written beside the turns.

Events go in through ``add_event`` from the agent's buffered sink, never from
the audio path; the inspector reads them back in time order with the turns.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace

from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from voxfleet.domain.calls import EndReason
from voxfleet.domain.events import CallEvent, EventKind
from voxfleet.errors import NotFound
from voxfleet.store.db import translate_unavailable
from voxfleet.store.models import CallEventRow, CallRow, TurnRow
from voxfleet.store.repository import (
    CallRecord,
    _to_datetime,
    _to_epoch,
    _to_record,
)


@dataclass(frozen=True, slots=True)
class HistoryFilter:
    """Which calls: each set field narrows the list. Times are epoch seconds
    on the call's creation; ``before`` is the keyset cursor (created_at, id)."""

    since: float | None = None
    until: float | None = None
    profile: str | None = None
    end_reason: EndReason | None = None
    had_failover: bool | None = None
    text: str | None = None
    before: tuple[float, str] | None = None


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    call: CallRecord
    had_failover: bool


class CallHistory:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def add_event(self, event: CallEvent) -> None:
        row = CallEventRow(
            call_id=event.call_id,
            at=_to_datetime(event.at),
            kind=event.kind.value,
            detail=dict(event.detail) or None,
        )
        try:
            async with self._transaction() as session:
                session.add(row)
        except sa_exc.IntegrityError as e:
            raise NotFound(f"call {event.call_id!r} not found") from e

    async def live_facts(self, call_ids: list[str]) -> dict[str, tuple[str | None, int]]:
        """For each of ``call_ids``: the caller's last stored words and how many
        failovers it has had so far (two queries, whatever the number of calls)."""
        if not call_ids:
            return {}
        last = (
            select(TurnRow.call_id, func.max(TurnRow.seq).label("seq"))
            .where(TurnRow.call_id.in_(call_ids), TurnRow.speaker == "user")
            .group_by(TurnRow.call_id)
            .subquery()
        )
        async with self._transaction() as session:
            said = await session.execute(
                select(TurnRow.call_id, TurnRow.text).join(
                    last, and_(TurnRow.call_id == last.c.call_id, TurnRow.seq == last.c.seq)
                )
            )
            counted = await session.execute(
                select(CallEventRow.call_id, func.count())
                .where(
                    CallEventRow.call_id.in_(call_ids),
                    CallEventRow.kind == EventKind.FAILOVER.value,
                )
                .group_by(CallEventRow.call_id)
            )
        words = {call_id: text for call_id, text in said.all()}
        failovers = {call_id: int(n) for call_id, n in counted.all()}
        return {c: (words.get(c), failovers.get(c, 0)) for c in call_ids}

    async def events(self, call_id: str) -> list[CallEvent]:
        """The call's events, oldest first."""
        statement = (
            select(CallEventRow)
            .where(CallEventRow.call_id == call_id)
            .order_by(CallEventRow.at, CallEventRow.id)
        )
        async with self._transaction() as session:
            rows = await session.scalars(statement)
            return [
                CallEvent(row.call_id, _to_epoch(row.at), EventKind(row.kind), row.detail or {})
                for row in rows
            ]

    async def search(self, where: HistoryFilter, limit: int) -> list[HistoryEntry]:
        """The newest matching calls first, without their turns."""
        if limit < 1:
            raise ValueError(f"limit: must be at least 1, got {limit}")
        failed_over = _failed_over()
        statement = (
            select(CallRow, failed_over.label("had_failover"))
            .where(*_conditions(where))
            .order_by(CallRow.created_at.desc(), CallRow.id.desc())
            .limit(limit)
        )
        async with self._transaction() as session:
            result = await session.execute(statement)
            return [HistoryEntry(_to_record(row, ()), bool(flag)) for row, flag in result.all()]

    async def count(self, where: HistoryFilter) -> int:
        statement = select(func.count()).select_from(CallRow).where(*_conditions(where))
        async with self._transaction() as session:
            return int((await session.execute(statement)).scalar_one())

    async def with_turns(self, where: HistoryFilter, limit: int) -> AsyncIterator[CallRecord]:
        """Matching calls, newest first, with their turns: read a page at a
        time so an export never holds every call in memory."""
        page = 100
        cursor = where
        left = limit
        while left > 0:
            statement = (
                select(CallRow)
                .where(*_conditions(cursor))
                .order_by(CallRow.created_at.desc(), CallRow.id.desc())
                .limit(min(page, left))
            )
            async with self._transaction() as session:
                calls = (await session.scalars(statement)).all()
                if not calls:
                    return
                turns = await session.scalars(
                    select(TurnRow)
                    .where(TurnRow.call_id.in_([call.id for call in calls]))
                    .order_by(TurnRow.call_id, TurnRow.seq)
                )
                by_call: dict[str, list[TurnRow]] = {}
                for turn in turns:
                    by_call.setdefault(turn.call_id, []).append(turn)
                records = [_to_record(call, by_call.get(call.id, [])) for call in calls]
            for record in records:
                yield record
            left -= len(records)
            last = records[-1]
            cursor = replace(where, before=(last.created_at, last.id))

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncSession]:
        with translate_unavailable():
            async with self._sessions.begin() as session:
                yield session


def _failed_over() -> ColumnElement[bool]:
    return exists().where(
        CallEventRow.call_id == CallRow.id, CallEventRow.kind == EventKind.FAILOVER.value
    )


def _like_pattern(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _conditions(where: HistoryFilter) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = []
    if where.since is not None:
        out.append(CallRow.created_at >= _to_datetime(where.since))
    if where.until is not None:
        out.append(CallRow.created_at < _to_datetime(where.until))
    if where.profile is not None:
        out.append(CallRow.profile == where.profile)
    if where.end_reason is not None:
        out.append(CallRow.end_reason == where.end_reason.value)
    if where.had_failover is not None:
        failed_over = _failed_over()
        out.append(failed_over if where.had_failover else ~failed_over)
    if where.text:
        out.append(
            exists().where(
                TurnRow.call_id == CallRow.id,
                func.lower(TurnRow.text).like(_like_pattern(where.text), escape="\\"),
            )
        )
    if where.before is not None:
        at, call_id = where.before
        stamp = _to_datetime(at)
        out.append(
            or_(CallRow.created_at < stamp, and_(CallRow.created_at == stamp, CallRow.id < call_id))
        )
    return out
