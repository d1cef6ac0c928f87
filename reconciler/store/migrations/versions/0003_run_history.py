"""A run's state history (`flow_run_states`), the host and pid of each worker, and an index for the runs page.

Revision ID: 0003_run_history
Revises: 0002_sync
Create Date: 2026-12-07 17:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_run_history"
down_revision: str | None = "0002_sync"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "flow_run_states",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("from_state", sa.String(length=20), nullable=True),
        sa.Column("to_state", sa.String(length=20), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=300), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["flow_runs.id"], name=op.f("fk_flow_run_states_run_id_flow_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flow_run_states")),
    )
    op.create_index("ix_flow_run_states_run_id_id", "flow_run_states", ["run_id", "id"], unique=False)
    op.create_index(
        "ix_flow_runs_expected_start_time_id", "flow_runs", ["expected_start_time", "id"], unique=False
    )
    with op.batch_alter_table("workers") as batch:
        batch.add_column(sa.Column("host", sa.String(length=300), nullable=True))
        batch.add_column(sa.Column("pid", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workers") as batch:
        batch.drop_column("pid")
        batch.drop_column("host")
    op.drop_index("ix_flow_runs_expected_start_time_id", table_name="flow_runs")
    op.drop_index("ix_flow_run_states_run_id_id", table_name="flow_run_states")
    op.drop_table("flow_run_states")
