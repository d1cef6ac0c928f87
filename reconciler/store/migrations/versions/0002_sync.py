"""Continuous sync: the `sync_status` table, and the commit author and message in the apply history.

Revision ID: 0002_sync
Revises: 0001_initial
Create Date: 2026-12-07 14:15:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002_sync"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> Any:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("apply_history") as batch:
        batch.add_column(sa.Column("git_author", sa.String(length=300), nullable=True))
        batch.add_column(sa.Column("git_message", sa.Text(), nullable=True))
    op.create_table(
        "sync_status",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("repo", sa.Text(), nullable=False),
        sa.Column("branch", sa.String(length=300), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("phase", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=100), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("fetched_revision", sa.String(length=64), nullable=True),
        sa.Column("attempted_revision", sa.String(length=64), nullable=True),
        sa.Column("applied_revision", sa.String(length=64), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_plan", _json(), nullable=True),
        sa.Column("drift", _json(), nullable=False),
        sa.Column("attempts", _json(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("live_digest", sa.String(length=64), nullable=True),
        sa.Column("suspended", sa.Boolean(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("handled_request_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_status")),
    )


def downgrade() -> None:
    op.drop_table("sync_status")
    with op.batch_alter_table("apply_history") as batch:
        batch.drop_column("git_message")
        batch.drop_column("git_author")
