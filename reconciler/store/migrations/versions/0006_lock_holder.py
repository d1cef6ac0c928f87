"""The apply lock records its holding process (host, pid, start), so a holder that died can be told.

Revision ID: 0006_lock_holder
Revises: 0005_revision
Create Date: 2026-12-07 17:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_lock_holder"
down_revision: str | None = "0005_revision"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("locks") as batch:
        batch.add_column(sa.Column("holder_host", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("holder_pid", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("holder_started", sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("locks") as batch:
        batch.drop_column("holder_started")
        batch.drop_column("holder_pid")
        batch.drop_column("holder_host")
