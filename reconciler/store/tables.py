"""The SQL schema: every table wp persists, as SQLAlchemy Core tables on one MetaData.

Owns the table and column definitions (declared objects, settings, the lease lock, apply history, the runtime
tables flow_runs / flow_run_states / workers / flow_run_logs, the continuous sync's status) and the column types
that make SQLite and PostgreSQL behave alike (`UtcDateTime`, `JsonValue`). Declared objects are keyed by their
natural identity (pool name, pool/queue, flow/name, flow/name/slug) so a whole plan can be written with
executemany, without reading generated ids back.

Must never hold queries or business rules: those live in `sql.py` (objects) and `runs.py`, `workers.py`,
`logs.py` (runtime). The Alembic revision in `migrations/versions/` must be kept in step with this file.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator, TypeEngine

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both dialects. SQLite keeps no zone, so values are stored as naive UTC (which
    also keeps its text comparisons in time order) and given their zone back when read."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class _Json(TypeDecorator[Any]):
    """JSON, as JSONB on PostgreSQL. The PostgreSQL type is looked up when a PostgreSQL engine first uses the
    column: importing SQLAlchemy's PostgreSQL dialect costs every SQLite process tens of milliseconds."""

    impl = JSON
    cache_ok = True

    def __init__(self, none_as_null: bool = False) -> None:
        super().__init__(none_as_null=none_as_null)
        self.none_as_null = none_as_null

    @property
    def should_evaluate_none(self) -> bool:  # type: ignore[override]  # JSON's own rule: None is JSON null
        return not self.none_as_null

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB(none_as_null=self.none_as_null))
        return dialect.type_descriptor(JSON(none_as_null=self.none_as_null))


def JsonValue(*, nullable_as_sql_null: bool = False) -> Any:
    """JSON on SQLite, JSONB on PostgreSQL. With `nullable_as_sql_null`, None is SQL NULL, not JSON null."""
    return _Json(none_as_null=nullable_as_sql_null)


def _managed() -> list[Column[Any]]:
    """Columns every declared object carries: its owning project, what wp last applied, and row times."""
    return [
        Column("owner", String(200), nullable=True, index=True),
        Column("applied", JsonValue(nullable_as_sql_null=True), nullable=True),
        Column("created", UtcDateTime(), nullable=False),
        Column("updated", UtcDateTime(), nullable=False),
    ]


work_pools = Table(
    "work_pools",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("type", String(100), nullable=False),
    Column("description", Text, nullable=True),
    Column("paused", Boolean, nullable=False, default=False),
    Column("concurrency_limit", Integer, nullable=True),
    Column("base_job_template", JsonValue(), nullable=False),
    *_managed(),
)

work_queues = Table(
    "work_queues",
    metadata,
    Column("work_pool", String(200), primary_key=True),
    Column("name", String(200), primary_key=True),
    # Not unique: a plan rewrites priorities one queue at a time; the store keeps them unique in code.
    Column("priority", Integer, nullable=False),
    Column("concurrency_limit", Integer, nullable=True),
    Column("paused", Boolean, nullable=False, default=False),
    Column("description", Text, nullable=True),
    Column("last_polled", UtcDateTime(), nullable=True),
    *_managed(),
    ForeignKeyConstraint(["work_pool"], ["work_pools.name"], ondelete="CASCADE"),
    Index("ix_work_queues_pool_priority", "work_pool", "priority"),
)

deployments = Table(
    "deployments",
    metadata,
    Column("flow", String(200), primary_key=True),
    Column("name", String(200), primary_key=True),
    Column("entrypoint", Text, nullable=False),
    # By name, not a foreign key: a deployment may outlive or precede its pool (SPEC §2).
    Column("work_pool", String(200), nullable=True, index=True),
    Column("work_queue", String(200), nullable=True),
    Column("job_variables", JsonValue(), nullable=False),
    Column("parameters", JsonValue(), nullable=False),
    Column("tags", JsonValue(), nullable=False),
    Column("description", Text, nullable=True),
    Column("paused", Boolean, nullable=False, default=False),
    Column("concurrency_limit", Integer, nullable=True),
    Column("version", String(200), nullable=True),
    Column("pull_steps", JsonValue(), nullable=False),
    Column(
        "parameter_schema", JsonValue(nullable_as_sql_null=True), nullable=True
    ),  # read from the code at plan
    *_managed(),
)

deployment_schedules = Table(
    "deployment_schedules",
    metadata,
    Column("flow", String(200), primary_key=True),
    Column("name", String(200), primary_key=True),
    Column("slug", String(200), primary_key=True),
    Column("cron", String(200), nullable=True),
    Column("interval", Float, nullable=True),
    Column("anchor_date", UtcDateTime(), nullable=True),
    Column("rrule", Text, nullable=True),
    Column("timezone", String(100), nullable=True),
    Column("day_or", Boolean, nullable=False, default=True),
    Column("active", Boolean, nullable=False, default=True),
    Column("parameters", JsonValue(), nullable=False),
    *_managed(),
    ForeignKeyConstraint(["flow", "name"], ["deployments.flow", "deployments.name"], ondelete="CASCADE"),
)

settings = Table(
    "settings",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("value", JsonValue(nullable_as_sql_null=True), nullable=True),
)

locks = Table(
    "locks",
    metadata,
    Column("name", String(100), primary_key=True),  # one lease per name; apply uses "apply"
    Column("lock_id", String(64), nullable=False, unique=True),
    Column("holder", String(300), nullable=False),
    Column("operation", String(100), nullable=False),
    Column("acquired_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    # the holding process (store/holder.py), so that a holder that died on this host can be told
    Column("holder_host", String(255), nullable=True),
    Column("holder_pid", Integer(), nullable=True),
    Column("holder_started", String(100), nullable=True),
)

apply_history = Table(
    "apply_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("time", UtcDateTime(), nullable=False),
    Column("project", String(200), nullable=False, index=True),
    Column("actor", String(300), nullable=False),
    Column("summary", JsonValue(), nullable=False),
    Column("git_commit", String(64), nullable=True),
    Column("git_branch", String(300), nullable=True),
    Column("git_dirty", Boolean, nullable=True),
    Column("plan_hash", String(64), nullable=True),
    Column("addresses", JsonValue(), nullable=False),
    Column("git_author", String(300), nullable=True),  # since 0002_sync
    Column("git_message", Text, nullable=True),
)

sync_status = Table(
    "sync_status",
    metadata,
    # sha256 of (repo, branch, path): URLs and paths may be longer than an index allows
    Column("id", String(64), primary_key=True),
    Column("repo", Text, nullable=False),
    Column("branch", String(300), nullable=False),
    Column("path", Text, nullable=False),
    Column("phase", String(20), nullable=False),
    Column("reason", String(100), nullable=False),
    Column("message", Text, nullable=False),
    Column("fetched_revision", String(64), nullable=True),
    Column("attempted_revision", String(64), nullable=True),
    Column("applied_revision", String(64), nullable=True),
    Column("last_attempt_at", UtcDateTime(), nullable=True),
    Column("last_success_at", UtcDateTime(), nullable=True),
    Column("last_plan", JsonValue(nullable_as_sql_null=True), nullable=True),
    Column("drift", JsonValue(), nullable=False),
    Column("attempts", JsonValue(), nullable=False),
    Column("failures", Integer, nullable=False, default=0),
    Column("live_digest", String(64), nullable=True),
    Column("suspended", Boolean, nullable=False, default=False),
    Column("requested_at", UtcDateTime(), nullable=True),
    Column("handled_request_at", UtcDateTime(), nullable=True),
    Column("updated_at", UtcDateTime(), nullable=False),
)

# The store revision: one row, counted up by database triggers (migration 0005_revision) in every transaction
# that writes a declared object or a setting, whatever wrote it (apply, CLI, API, UI, raw SQL). A runtime write
# (runs, workers, a queue's `last_polled`) leaves it alone. See `revision.py`.
store_revision = Table(
    "store_revision",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("revision", Integer, nullable=False),
)

# Known no-ops: the input manifest of a project whose plan had no changes at `revision` (shortcut.py).
plan_inputs = Table(
    "plan_inputs",
    metadata,
    Column("key", String(64), primary_key=True),  # sha256 of the project directory and the plan flags
    Column("revision", Integer, nullable=False),
    Column("record", JsonValue(), nullable=False),
    Column("updated", UtcDateTime(), nullable=False, index=True),
)

# -------------------------------------------------------------------------------------- runtime tables

flow_runs = Table(
    "flow_runs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("flow", String(200), nullable=False),
    Column("deployment", String(401), nullable=False, index=True),  # "flow/name"
    Column("work_pool", String(200), nullable=False),
    Column("work_queue", String(200), nullable=False),
    Column("state", String(20), nullable=False),
    Column("state_message", Text, nullable=True),
    Column("expected_start_time", UtcDateTime(), nullable=False),
    Column("start_time", UtcDateTime(), nullable=True),
    Column("end_time", UtcDateTime(), nullable=True),
    Column("created", UtcDateTime(), nullable=False),
    Column("updated", UtcDateTime(), nullable=True),
    Column("parameters", JsonValue(), nullable=False),
    Column("job_variables", JsonValue(), nullable=False),
    Column("schedule_slug", String(200), nullable=True),
    Column("idempotency_key", String(500), nullable=True),
    Column("worker", String(300), nullable=True),
    Column("infrastructure_id", String(300), nullable=True),
    Column("run_count", Integer, nullable=False, default=0),
    UniqueConstraint("idempotency_key"),
    # The claim query: due runs of a pool in a state, oldest first.
    Index("ix_flow_runs_state_pool_start", "state", "work_pool", "expected_start_time"),
    # Claim walks one queue at a time in (expected_start_time, id) order: O(claimed), not O(scheduled).
    Index("ix_flow_runs_pool_queue_state", "work_pool", "work_queue", "state", "expected_start_time", "id"),
    # Deployment concurrency counts and the scheduler's look at a deployment's future runs.
    Index("ix_flow_runs_deployment_state", "deployment", "state", "expected_start_time"),
    # The unfiltered runs page: newest first, paged by (expected_start_time, id). Since 0003_run_history.
    Index("ix_flow_runs_expected_start_time_id", "expected_start_time", "id"),
)

workers = Table(
    "workers",
    metadata,
    Column("work_pool", String(200), primary_key=True),
    Column("name", String(300), primary_key=True),
    Column("last_heartbeat", UtcDateTime(), nullable=False),
    Column("heartbeat_interval", Float, nullable=False, default=30.0),
    Column("host", String(300), nullable=True),  # since 0003_run_history: where the worker runs
    Column("pid", Integer, nullable=True),
    ForeignKeyConstraint(["work_pool"], ["work_pools.name"], ondelete="CASCADE"),
)

flow_run_logs = Table(
    "flow_run_logs",
    metadata,
    Column("run_id", String(36), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("timestamp", UtcDateTime(), nullable=False),
    Column("stream", String(20), nullable=False),
    Column("message", Text, nullable=False),
    ForeignKeyConstraint(["run_id"], ["flow_runs.id"], ondelete="CASCADE"),
)

# A run's state history (since 0003_run_history): one row per state change, written in the transaction that
# makes the change. A run's creation is its `created` time, not a row here.
flow_run_states = Table(
    "flow_run_states",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(36), nullable=False),
    Column("from_state", String(20), nullable=True),
    Column("to_state", String(20), nullable=False),
    Column("timestamp", UtcDateTime(), nullable=False),
    Column("message", Text, nullable=True),
    Column("actor", String(300), nullable=True),  # who made the change: a worker, a user, the scheduler
    ForeignKeyConstraint(["run_id"], ["flow_runs.id"], ondelete="CASCADE"),
    Index("ix_flow_run_states_run_id_id", "run_id", "id"),
)

ALL_TABLES: tuple[Table, ...] = tuple(metadata.sorted_tables)
