"""The relational schema of the store: one row per call, one row per turn, one
row per call event, one row per monitor user.

Only the repository and the migrations import these classes; everything else
sees the domain types of ``voxfleet.domain.calls``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Named constraints let later migrations drop or alter them by a name that is the
# same on every database, instead of whatever each backend generated.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class CallRow(Base):
    __tablename__ = "calls"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    profile: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    end_reason: Mapped[str | None] = mapped_column(String(32))


class TurnRow(Base):
    __tablename__ = "turns"
    # The unique index on (call_id, seq) also serves every lookup by call_id (its
    # leading column), so call_id has no index of its own to maintain on each write.
    __table_args__ = (UniqueConstraint("call_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(String(64), ForeignKey("calls.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    speaker: Mapped[str] = mapped_column(String(8))
    text: Mapped[str] = mapped_column(Text)
    interrupted: Mapped[bool] = mapped_column(Boolean)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    speech_end_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    stt_done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    llm_first_token_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    tts_first_audio_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    first_audio_sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # [{"name": ..., "arguments": {...}, "result": ...}] for each tool the agent called
    tools: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)


class CallEventRow(Base):
    """A failover, handover, resume, barge-in or provider fault of a call."""

    __tablename__ = "call_events"
    # (call_id, at) serves the timeline's reads and the had_failover filter's EXISTS.
    __table_args__ = (Index("ix_call_events_call_id_at", "call_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(String(64), ForeignKey("calls.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class UserRow(Base):
    """A monitor user: who may sign in to the monitor, and as what."""

    __tablename__ = "users"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
