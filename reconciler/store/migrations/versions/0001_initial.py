"""Initial schema: every table of `reconciler.store.tables` as of the first release.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-23 06:02:46.744937
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001_initial"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "apply_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("project", sa.String(length=200), nullable=False),
        sa.Column("actor", sa.String(length=300), nullable=False),
        sa.Column(
            "summary",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("git_commit", sa.String(length=64), nullable=True),
        sa.Column("git_branch", sa.String(length=300), nullable=True),
        sa.Column("git_dirty", sa.Boolean(), nullable=True),
        sa.Column("plan_hash", sa.String(length=64), nullable=True),
        sa.Column(
            "addresses",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_apply_history")),
    )
    with op.batch_alter_table("apply_history", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_apply_history_project"), ["project"], unique=False)

    op.create_table(
        "deployments",
        sa.Column("flow", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("entrypoint", sa.Text(), nullable=False),
        sa.Column("work_pool", sa.String(length=200), nullable=True),
        sa.Column("work_queue", sa.String(length=200), nullable=True),
        sa.Column(
            "job_variables",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "parameters",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "tags",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("concurrency_limit", sa.Integer(), nullable=True),
        sa.Column("version", sa.String(length=200), nullable=True),
        sa.Column(
            "pull_steps",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("owner", sa.String(length=200), nullable=True),
        sa.Column(
            "applied",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=True,
        ),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("flow", "name", name=op.f("pk_deployments")),
    )
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deployments_owner"), ["owner"], unique=False)
        batch_op.create_index(batch_op.f("ix_deployments_work_pool"), ["work_pool"], unique=False)

    op.create_table(
        "flow_runs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("flow", sa.String(length=200), nullable=False),
        sa.Column("deployment", sa.String(length=401), nullable=False),
        sa.Column("work_pool", sa.String(length=200), nullable=False),
        sa.Column("work_queue", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("state_message", sa.Text(), nullable=True),
        sa.Column("expected_start_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "parameters",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "job_variables",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("schedule_slug", sa.String(length=200), nullable=True),
        sa.Column("idempotency_key", sa.String(length=500), nullable=True),
        sa.Column("worker", sa.String(length=300), nullable=True),
        sa.Column("infrastructure_id", sa.String(length=300), nullable=True),
        sa.Column("run_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flow_runs")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_flow_runs_idempotency_key")),
    )
    with op.batch_alter_table("flow_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_flow_runs_deployment"), ["deployment"], unique=False)
        batch_op.create_index(
            "ix_flow_runs_pool_queue_state",
            ["work_pool", "work_queue", "state", "expected_start_time", "id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_flow_runs_deployment_state", ["deployment", "state", "expected_start_time"], unique=False
        )
        batch_op.create_index(
            "ix_flow_runs_state_pool_start", ["state", "work_pool", "expected_start_time"], unique=False
        )

    op.create_table(
        "locks",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("lock_id", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=300), nullable=False),
        sa.Column("operation", sa.String(length=100), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_locks")),
        sa.UniqueConstraint("lock_id", name=op.f("uq_locks_lock_id")),
    )
    op.create_table(
        "settings",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column(
            "value",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_settings")),
    )
    op.create_table(
        "work_pools",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("concurrency_limit", sa.Integer(), nullable=True),
        sa.Column(
            "base_job_template",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("owner", sa.String(length=200), nullable=True),
        sa.Column(
            "applied",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=True,
        ),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_work_pools")),
    )
    with op.batch_alter_table("work_pools", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_work_pools_owner"), ["owner"], unique=False)

    op.create_table(
        "deployment_schedules",
        sa.Column("flow", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("slug", sa.String(length=200), nullable=False),
        sa.Column("cron", sa.String(length=200), nullable=True),
        sa.Column("interval", sa.Float(), nullable=True),
        sa.Column("anchor_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rrule", sa.Text(), nullable=True),
        sa.Column("timezone", sa.String(length=100), nullable=True),
        sa.Column("day_or", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column(
            "parameters",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("owner", sa.String(length=200), nullable=True),
        sa.Column(
            "applied",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=True,
        ),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["flow", "name"],
            ["deployments.flow", "deployments.name"],
            name=op.f("fk_deployment_schedules_flow_name_deployments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("flow", "name", "slug", name=op.f("pk_deployment_schedules")),
    )
    with op.batch_alter_table("deployment_schedules", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deployment_schedules_owner"), ["owner"], unique=False)

    op.create_table(
        "flow_run_logs",
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stream", sa.String(length=20), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["flow_runs.id"], name=op.f("fk_flow_run_logs_run_id_flow_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "seq", name=op.f("pk_flow_run_logs")),
    )
    op.create_table(
        "work_queues",
        sa.Column("work_pool", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("concurrency_limit", sa.Integer(), nullable=True),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("last_polled", sa.DateTime(timezone=True), nullable=True),
        sa.Column("owner", sa.String(length=200), nullable=True),
        sa.Column(
            "applied",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=True,
        ),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["work_pool"],
            ["work_pools.name"],
            name=op.f("fk_work_queues_work_pool_work_pools"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("work_pool", "name", name=op.f("pk_work_queues")),
    )
    with op.batch_alter_table("work_queues", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_work_queues_owner"), ["owner"], unique=False)
        batch_op.create_index("ix_work_queues_pool_priority", ["work_pool", "priority"], unique=False)

    op.create_table(
        "workers",
        sa.Column("work_pool", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("last_heartbeat", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_interval", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["work_pool"],
            ["work_pools.name"],
            name=op.f("fk_workers_work_pool_work_pools"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("work_pool", "name", name=op.f("pk_workers")),
    )


def downgrade() -> None:

    op.drop_table("workers")
    with op.batch_alter_table("work_queues", schema=None) as batch_op:
        batch_op.drop_index("ix_work_queues_pool_priority")
        batch_op.drop_index(batch_op.f("ix_work_queues_owner"))

    op.drop_table("work_queues")
    op.drop_table("flow_run_logs")
    with op.batch_alter_table("deployment_schedules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deployment_schedules_owner"))

    op.drop_table("deployment_schedules")
    with op.batch_alter_table("work_pools", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_work_pools_owner"))

    op.drop_table("work_pools")
    op.drop_table("settings")
    op.drop_table("locks")
    with op.batch_alter_table("flow_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_flow_runs_state_pool_start")
        batch_op.drop_index("ix_flow_runs_pool_queue_state")
        batch_op.drop_index("ix_flow_runs_deployment_state")
        batch_op.drop_index(batch_op.f("ix_flow_runs_deployment"))

    op.drop_table("flow_runs")
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deployments_work_pool"))
        batch_op.drop_index(batch_op.f("ix_deployments_owner"))

    op.drop_table("deployments")
    with op.batch_alter_table("apply_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_apply_history_project"))

    op.drop_table("apply_history")
