"""Turns record the tools the agent called.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, no default: adding it rewrites no row, so it is instant on a
    # large table and safe while the previous release still writes turns.
    op.add_column("turns", sa.Column("tools", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("turns", "tools")
