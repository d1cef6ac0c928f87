"""The store revision: a counter that triggers raise in every transaction writing a declared object or a
setting, and the `plan_inputs` table of known no-op plans (the no-op shortcut of `wp plan`).

Triggers, not code in the store: every writer counts, whatever path it takes (apply, the imperative CLI, the
API, the UI, another wp version, raw SQL). A runtime write (runs, workers, logs, a queue's `last_polled`) does
not: it changes nothing a plan compares. PostgreSQL raises the counter once per transaction (statement
triggers guarded by a transaction-local setting), so a 10,000-row apply updates its row once; SQLite has
only row triggers, whose in-page update costs about a microsecond per row.

Revision ID: 0005_revision
Revises: 0004_parameter_schema
Create Date: 2026-12-07 17:30:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005_revision"
down_revision: str | None = "0004_parameter_schema"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Tables a plan compares, and for each the columns whose update is NOT a declared change (runtime bookkeeping).
_WATCHED: dict[str, tuple[str, ...]] = {
    "work_pools": (),
    "work_queues": ("last_polled",),
    "deployments": (),
    "deployment_schedules": (),
    "settings": (),
}
_COLUMNS: dict[str, tuple[str, ...]] = {
    "work_pools": (
        "name",
        "type",
        "description",
        "paused",
        "concurrency_limit",
        "base_job_template",
        "owner",
        "applied",
        "created",
        "updated",
    ),
    "work_queues": (
        "work_pool",
        "name",
        "priority",
        "concurrency_limit",
        "paused",
        "description",
        "last_polled",
        "owner",
        "applied",
        "created",
        "updated",
    ),
}

_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION wp_bump_revision() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- once per transaction: a setting local to it remembers the raise (and is undone with a rolled-back
    -- savepoint, as the raise is)
    IF current_setting('wp.revision_raised', true) IS DISTINCT FROM 'yes' THEN
        UPDATE store_revision SET revision = revision + 1 WHERE id = 1;
        PERFORM set_config('wp.revision_raised', 'yes', true);
    END IF;
    RETURN NULL;
END $$;
"""


def _json() -> Any:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _update_columns(table: str) -> str:
    """`UPDATE OF a, b` for a table with runtime columns, else plain `UPDATE`."""
    skipped = _WATCHED[table]
    if not skipped:
        return "UPDATE"
    return "UPDATE OF " + ", ".join(c for c in _COLUMNS[table] if c not in skipped)


def upgrade() -> None:
    op.create_table(
        "store_revision",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_store_revision")),
    )
    op.execute("INSERT INTO store_revision (id, revision) VALUES (1, 1)")
    op.create_table(
        "plan_inputs",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("record", _json(), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_plan_inputs")),
    )
    op.create_index(op.f("ix_plan_inputs_updated"), "plan_inputs", ["updated"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        for table in _WATCHED:
            op.execute(
                f"CREATE TRIGGER wp_revision_{table} AFTER INSERT OR DELETE OR {_update_columns(table)} "
                f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION wp_bump_revision()"
            )
            op.execute(
                f"CREATE TRIGGER wp_revision_{table}_truncate AFTER TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION wp_bump_revision()"
            )
        return
    for table in _WATCHED:
        for event, name in (("INSERT", "insert"), ("DELETE", "delete"), (_update_columns(table), "update")):
            op.execute(
                f"CREATE TRIGGER wp_revision_{table}_{name} AFTER {event} ON {table} "
                "BEGIN UPDATE store_revision SET revision = revision + 1 WHERE id = 1; END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in _WATCHED:
            op.execute(f"DROP TRIGGER IF EXISTS wp_revision_{table} ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS wp_revision_{table}_truncate ON {table}")
        op.execute("DROP FUNCTION IF EXISTS wp_bump_revision()")
    else:
        for table in _WATCHED:
            for name in ("insert", "delete", "update"):
                op.execute(f"DROP TRIGGER IF EXISTS wp_revision_{table}_{name}")
    op.drop_index(op.f("ix_plan_inputs_updated"), table_name="plan_inputs")
    op.drop_table("plan_inputs")
    op.drop_table("store_revision")
