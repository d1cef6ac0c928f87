"""The schema of a new SQLite store at the head migration, as the statements that build it in one go.

Owns the fast start of a store on a new SQLite file: instead of importing Alembic (with Mako and Pygments) and running
every migration (0.19 s of CPU together, measured on a 10,000-deployment first apply), `create_fresh` replays the statements below, which are
`sqlite3.Connection.iterdump()` of a store the migrations built. Used only for a file with no tables yet and only
when `HEAD` is the head the code expects; anything else goes through Alembic. tests/store/test_sqlite_head.py checks
that a store built from these statements and one built by the migrations hold the same schema and rows; after a
new migration, regenerate this file with `python -m reconciler.store.sqlite_head`, then `ruff format` it.
"""

from __future__ import annotations

from sqlalchemy import Connection

HEAD = "0006_lock_holder"
STATEMENTS: tuple[str, ...] = (
    "CREATE TABLE alembic_version (\n\tversion_num VARCHAR(32) NOT NULL, \n\tCONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)\n);",
    "INSERT INTO \"alembic_version\" VALUES('0006_lock_holder');",
    "CREATE TABLE apply_history (\n\tid INTEGER NOT NULL, \n\ttime DATETIME NOT NULL, \n\tproject VARCHAR(200) NOT NULL, \n\tactor VARCHAR(300) NOT NULL, \n\tsummary JSON NOT NULL, \n\tgit_commit VARCHAR(64), \n\tgit_branch VARCHAR(300), \n\tgit_dirty BOOLEAN, \n\tplan_hash VARCHAR(64), \n\taddresses JSON NOT NULL, git_author VARCHAR(300), git_message TEXT, \n\tCONSTRAINT pk_apply_history PRIMARY KEY (id)\n);",
    "CREATE TABLE deployment_schedules (\n\tflow VARCHAR(200) NOT NULL, \n\tname VARCHAR(200) NOT NULL, \n\tslug VARCHAR(200) NOT NULL, \n\tcron VARCHAR(200), \n\tinterval FLOAT, \n\tanchor_date DATETIME, \n\trrule TEXT, \n\ttimezone VARCHAR(100), \n\tday_or BOOLEAN NOT NULL, \n\tactive BOOLEAN NOT NULL, \n\tparameters JSON NOT NULL, \n\towner VARCHAR(200), \n\tapplied JSON, \n\tcreated DATETIME NOT NULL, \n\tupdated DATETIME NOT NULL, \n\tCONSTRAINT pk_deployment_schedules PRIMARY KEY (flow, name, slug), \n\tCONSTRAINT fk_deployment_schedules_flow_name_deployments FOREIGN KEY(flow, name) REFERENCES deployments (flow, name) ON DELETE CASCADE\n);",
    "CREATE TABLE deployments (\n\tflow VARCHAR(200) NOT NULL, \n\tname VARCHAR(200) NOT NULL, \n\tentrypoint TEXT NOT NULL, \n\twork_pool VARCHAR(200), \n\twork_queue VARCHAR(200), \n\tjob_variables JSON NOT NULL, \n\tparameters JSON NOT NULL, \n\ttags JSON NOT NULL, \n\tdescription TEXT, \n\tpaused BOOLEAN NOT NULL, \n\tconcurrency_limit INTEGER, \n\tversion VARCHAR(200), \n\tpull_steps JSON NOT NULL, \n\towner VARCHAR(200), \n\tapplied JSON, \n\tcreated DATETIME NOT NULL, \n\tupdated DATETIME NOT NULL, parameter_schema JSON, \n\tCONSTRAINT pk_deployments PRIMARY KEY (flow, name)\n);",
    "CREATE TABLE flow_run_logs (\n\trun_id VARCHAR(36) NOT NULL, \n\tseq INTEGER NOT NULL, \n\ttimestamp DATETIME NOT NULL, \n\tstream VARCHAR(20) NOT NULL, \n\tmessage TEXT NOT NULL, \n\tCONSTRAINT pk_flow_run_logs PRIMARY KEY (run_id, seq), \n\tCONSTRAINT fk_flow_run_logs_run_id_flow_runs FOREIGN KEY(run_id) REFERENCES flow_runs (id) ON DELETE CASCADE\n);",
    "CREATE TABLE flow_run_states (\n\tid INTEGER NOT NULL, \n\trun_id VARCHAR(36) NOT NULL, \n\tfrom_state VARCHAR(20), \n\tto_state VARCHAR(20) NOT NULL, \n\ttimestamp DATETIME NOT NULL, \n\tmessage TEXT, \n\tactor VARCHAR(300), \n\tCONSTRAINT pk_flow_run_states PRIMARY KEY (id), \n\tCONSTRAINT fk_flow_run_states_run_id_flow_runs FOREIGN KEY(run_id) REFERENCES flow_runs (id) ON DELETE CASCADE\n);",
    "CREATE TABLE flow_runs (\n\tid VARCHAR(36) NOT NULL, \n\tname VARCHAR(200) NOT NULL, \n\tflow VARCHAR(200) NOT NULL, \n\tdeployment VARCHAR(401) NOT NULL, \n\twork_pool VARCHAR(200) NOT NULL, \n\twork_queue VARCHAR(200) NOT NULL, \n\tstate VARCHAR(20) NOT NULL, \n\tstate_message TEXT, \n\texpected_start_time DATETIME NOT NULL, \n\tstart_time DATETIME, \n\tend_time DATETIME, \n\tcreated DATETIME NOT NULL, \n\tupdated DATETIME, \n\tparameters JSON NOT NULL, \n\tjob_variables JSON NOT NULL, \n\tschedule_slug VARCHAR(200), \n\tidempotency_key VARCHAR(500), \n\tworker VARCHAR(300), \n\tinfrastructure_id VARCHAR(300), \n\trun_count INTEGER NOT NULL, \n\tCONSTRAINT pk_flow_runs PRIMARY KEY (id), \n\tCONSTRAINT uq_flow_runs_idempotency_key UNIQUE (idempotency_key)\n);",
    "CREATE TABLE locks (\n\tname VARCHAR(100) NOT NULL, \n\tlock_id VARCHAR(64) NOT NULL, \n\tholder VARCHAR(300) NOT NULL, \n\toperation VARCHAR(100) NOT NULL, \n\tacquired_at DATETIME NOT NULL, \n\texpires_at DATETIME NOT NULL, holder_host VARCHAR(255), holder_pid INTEGER, holder_started VARCHAR(100), \n\tCONSTRAINT pk_locks PRIMARY KEY (name), \n\tCONSTRAINT uq_locks_lock_id UNIQUE (lock_id)\n);",
    'CREATE TABLE plan_inputs (\n\t"key" VARCHAR(64) NOT NULL, \n\trevision INTEGER NOT NULL, \n\trecord JSON NOT NULL, \n\tupdated DATETIME NOT NULL, \n\tCONSTRAINT pk_plan_inputs PRIMARY KEY ("key")\n);',
    'CREATE TABLE settings (\n\t"key" VARCHAR(100) NOT NULL, \n\tvalue JSON, \n\tCONSTRAINT pk_settings PRIMARY KEY ("key")\n);',
    "CREATE TABLE store_revision (\n\tid INTEGER NOT NULL, \n\trevision INTEGER NOT NULL, \n\tCONSTRAINT pk_store_revision PRIMARY KEY (id)\n);",
    'INSERT INTO "store_revision" VALUES(1,1);',
    "CREATE TABLE sync_status (\n\tid VARCHAR(64) NOT NULL, \n\trepo TEXT NOT NULL, \n\tbranch VARCHAR(300) NOT NULL, \n\tpath TEXT NOT NULL, \n\tphase VARCHAR(20) NOT NULL, \n\treason VARCHAR(100) NOT NULL, \n\tmessage TEXT NOT NULL, \n\tfetched_revision VARCHAR(64), \n\tattempted_revision VARCHAR(64), \n\tapplied_revision VARCHAR(64), \n\tlast_attempt_at DATETIME, \n\tlast_success_at DATETIME, \n\tlast_plan JSON, \n\tdrift JSON NOT NULL, \n\tattempts JSON NOT NULL, \n\tfailures INTEGER NOT NULL, \n\tlive_digest VARCHAR(64), \n\tsuspended BOOLEAN NOT NULL, \n\trequested_at DATETIME, \n\thandled_request_at DATETIME, \n\tupdated_at DATETIME NOT NULL, \n\tCONSTRAINT pk_sync_status PRIMARY KEY (id)\n);",
    "CREATE TABLE work_pools (\n\tname VARCHAR(200) NOT NULL, \n\ttype VARCHAR(100) NOT NULL, \n\tdescription TEXT, \n\tpaused BOOLEAN NOT NULL, \n\tconcurrency_limit INTEGER, \n\tbase_job_template JSON NOT NULL, \n\towner VARCHAR(200), \n\tapplied JSON, \n\tcreated DATETIME NOT NULL, \n\tupdated DATETIME NOT NULL, \n\tCONSTRAINT pk_work_pools PRIMARY KEY (name)\n);",
    "CREATE TABLE work_queues (\n\twork_pool VARCHAR(200) NOT NULL, \n\tname VARCHAR(200) NOT NULL, \n\tpriority INTEGER NOT NULL, \n\tconcurrency_limit INTEGER, \n\tpaused BOOLEAN NOT NULL, \n\tdescription TEXT, \n\tlast_polled DATETIME, \n\towner VARCHAR(200), \n\tapplied JSON, \n\tcreated DATETIME NOT NULL, \n\tupdated DATETIME NOT NULL, \n\tCONSTRAINT pk_work_queues PRIMARY KEY (work_pool, name), \n\tCONSTRAINT fk_work_queues_work_pool_work_pools FOREIGN KEY(work_pool) REFERENCES work_pools (name) ON DELETE CASCADE\n);",
    "CREATE TABLE workers (\n\twork_pool VARCHAR(200) NOT NULL, \n\tname VARCHAR(300) NOT NULL, \n\tlast_heartbeat DATETIME NOT NULL, \n\theartbeat_interval FLOAT NOT NULL, host VARCHAR(300), pid INTEGER, \n\tCONSTRAINT pk_workers PRIMARY KEY (work_pool, name), \n\tCONSTRAINT fk_workers_work_pool_work_pools FOREIGN KEY(work_pool) REFERENCES work_pools (name) ON DELETE CASCADE\n);",
    "CREATE INDEX ix_apply_history_project ON apply_history (project);",
    "CREATE INDEX ix_deployments_owner ON deployments (owner);",
    "CREATE INDEX ix_deployments_work_pool ON deployments (work_pool);",
    "CREATE INDEX ix_flow_runs_deployment ON flow_runs (deployment);",
    "CREATE INDEX ix_flow_runs_pool_queue_state ON flow_runs (work_pool, work_queue, state, expected_start_time, id);",
    "CREATE INDEX ix_flow_runs_deployment_state ON flow_runs (deployment, state, expected_start_time);",
    "CREATE INDEX ix_flow_runs_state_pool_start ON flow_runs (state, work_pool, expected_start_time);",
    "CREATE INDEX ix_work_pools_owner ON work_pools (owner);",
    "CREATE INDEX ix_deployment_schedules_owner ON deployment_schedules (owner);",
    "CREATE INDEX ix_work_queues_owner ON work_queues (owner);",
    "CREATE INDEX ix_work_queues_pool_priority ON work_queues (work_pool, priority);",
    "CREATE INDEX ix_flow_run_states_run_id_id ON flow_run_states (run_id, id);",
    "CREATE INDEX ix_flow_runs_expected_start_time_id ON flow_runs (expected_start_time, id);",
    "CREATE INDEX ix_plan_inputs_updated ON plan_inputs (updated);",
    "CREATE TRIGGER wp_revision_work_pools_insert AFTER INSERT ON work_pools BEGIN UPDATE store_revision SET revision = revision + 1 WHERE id = 1; END;",
    "CREATE TRIGGER wp_revision_work_pools_delete AFTER DELETE ON work_pools BEGIN UPDATE store_revision SET revision = revision + 1 WHERE id = 1; END;",
    "CREATE TRIGGER wp_revision_work_pools_update AFTER UPDATE ON work_pools BEGIN UPDATE store_revision SET revision = revision + 1 WHERE id = 1; END;",
    "CREATE TRIGGER wp_revision_work_queues_insert AFTER INSERT ON work_queues BEGIN UPDATE store_revision SET revision = revision + 1 WHERE id = 1; END;",
    "CREATE TRIGGER wp_revision_work_queues_delete AFTER DELETE ON work_queues BEGIN UPDATE store_revision SET revision = revision + 1 WHERE id = 1; END;",
    "CREATE TRIGGER wp_revision_work_queues_update AFTER UPDATE OF work_pool, name, priority, concurrency_limit, paused, description, owner, applied, created, updated ON work_queues BEGIN UPDATE store_revision SET revision = revision + 1 WHERE id = 1; END;",
    "CREATE TRIGGER wp_revision_deployments_insert AFTER INSERT ON deployments BEGIN UPDATE store_revision SET revision = revision + 1 WHERE id = 1; END;",
    "CREATE TRIGGER wp_revision_deployments_delete AFTER DELETE ON deployments BEGIN UPDATE store_revision SET revision = revision + 1 WHERE id = 1; END;",
    "CREATE TRIGGER wp_revision_deployments_update AFTER UPDATE ON deployments BEGIN UPDATE store_revision SET revision = revision + 1 WHERE id = 1; END;",
    "CREATE TRIGGER wp_revision_deployment_schedules_insert AFTER INSERT ON deployment_schedules BEGIN UPDATE store_revision SET revision = revision + 1 WHERE id = 1; END;",
    "CREATE TRIGGER wp_revision_deployment_schedules_delete AFTER DELETE ON deployment_schedules BEGIN UPDATE store_revision SET revision = revision + 1 WHERE id = 1; END;",
    "CREATE TRIGGER wp_revision_deployment_schedules_update AFTER UPDATE ON deployment_schedules BEGIN UPDATE store_revision SET revision = revision + 1 WHERE id = 1; END;",
    "CREATE TRIGGER wp_revision_settings_insert AFTER INSERT ON settings BEGIN UPDATE store_revision SET revision = revision + 1 WHERE id = 1; END;",
    "CREATE TRIGGER wp_revision_settings_delete AFTER DELETE ON settings BEGIN UPDATE store_revision SET revision = revision + 1 WHERE id = 1; END;",
    "CREATE TRIGGER wp_revision_settings_update AFTER UPDATE ON settings BEGIN UPDATE store_revision SET revision = revision + 1 WHERE id = 1; END;",
)


def create_fresh(conn: Connection, head: str) -> bool:
    """Build the schema at `head` on an empty SQLite database, in `conn`'s transaction; False (nothing done)
    when the database has any table already or these statements are not for `head`."""
    if head != HEAD or not STATEMENTS or conn.dialect.name != "sqlite":
        return False
    if conn.exec_driver_sql("SELECT count(*) FROM sqlite_master").scalar():
        return False
    for statement in STATEMENTS:
        conn.exec_driver_sql(statement)
    return True


def dump_by_migrations() -> list[str]:
    """iterdump() of a new SQLite store built by the migrations, without its BEGIN and COMMIT."""
    import sqlite3
    import tempfile

    from reconciler.store.connection import make_sql_engine, migrate_by_alembic

    with tempfile.TemporaryDirectory() as tmp:
        engine = make_sql_engine(f"sqlite:///{tmp}/wp.db")
        with engine.begin() as conn:
            migrate_by_alembic(conn)
        engine.dispose()
        with sqlite3.connect(f"{tmp}/wp.db") as raw:
            return [s for s in raw.iterdump() if s not in ("BEGIN TRANSACTION;", "COMMIT;")]


def _regenerate() -> None:
    from pathlib import Path

    from reconciler.store.connection import HEAD_REVISION

    path = Path(__file__)
    text = path.read_text()
    head, _, rest = text.partition('HEAD = "')
    rest = rest.split("\n", 1)[1]
    before, _, after = rest.partition("STATEMENTS: tuple[str, ...] = ")
    after = after[after.index("\n\n\n") :]
    body = "".join(f"    {s!r},\n" for s in dump_by_migrations())
    path.write_text(
        f'{head}HEAD = "{HEAD_REVISION}"\n{before}STATEMENTS: tuple[str, ...] = (\n{body})' + after
    )


if __name__ == "__main__":
    _regenerate()
