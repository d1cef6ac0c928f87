"""A plan made from a loaded config (`Plan.validated`) is written from its attribute form without building each
model again; the rows are exactly those of the same plan read back from its plan file, whose values the store
validates. Every kind, every field, the examples and a config that sets everything (an anchor date, a
custom template, pull steps, tags, priorities left to the store)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from reconciler.engine.apply import apply_plan
from reconciler.engine.plan import plan_from_json, plan_to_json
from reconciler.pipeline import plan_project
from reconciler.store import objects, tables
from reconciler.store.sql import SqlStore

EXAMPLES = Path(__file__).parents[2] / "examples"

EVERYTHING = """
project: all
work_pools:
  - name: plain
    queues: [{name: a}, {name: b, priority: 3, concurrency_limit: 2, paused: true, description: q}]
  - name: custom
    type: docker
    description: d
    paused: true
    concurrency_limit: 4
    base_job_template:
      job_configuration: {image: "{{ image }}", env: "{{ env }}"}
      variables: {type: object, properties: {image: {type: string, default: x}, env: {type: object}}}
deployments:
  - name: full
    entrypoint: flows/f.py:f
    description: all of it
    version: "1.2"
    tags: [b, a]
    paused: true
    concurrency_limit: 3
    parameters: {n: 1, nested: {list: [1, 2.5, null, "x"]}}
    pull: [{prefect.deployments.steps.set_working_directory: {directory: /tmp}}]
    work_pool: {name: custom, job_variables: {image: y, env: {A: "1"}}}
    schedules:
      - {slug: c, cron: "5 4 * * *", timezone: Europe/Berlin, day_or: false, active: false, parameters: {n: 2}}
      - {slug: i, interval: 90.5, anchor_date: "2026-01-01T00:00:00Z"}
      - {slug: r, rrule: "FREQ=DAILY;COUNT=3"}
  - name: bare
    entrypoint: flows/f.py:f
    work_pool: {name: plain, work_queue_name: b}
"""
FLOW = "def f(n: int = 0, nested: dict = {}) -> int:\n    return n\n"


def _projects(tmp_path: Path) -> list[Path]:
    found = []
    for example in sorted(EXAMPLES.iterdir()):
        if (example / "wp.yaml").is_file():
            target = tmp_path / example.name
            shutil.copytree(example, target)
            found.append(target)
    everything = tmp_path / "everything"
    (everything / "flows").mkdir(parents=True)
    (everything / "flows" / "f.py").write_text(FLOW)
    (everything / "wp.yaml").write_text(EVERYTHING)
    found.append(everything)
    return found


def _rows(url: str) -> dict[str, list[dict[str, Any]]]:
    engine = sa.create_engine(url)
    out = {}
    with engine.connect() as conn:
        for table in (tables.work_pools, tables.work_queues, tables.deployments, tables.deployment_schedules):
            rows = [dict(r._mapping) for r in conn.execute(sa.select(table))]
            for row in rows:
                row.pop("created"), row.pop("updated")
            out[table.name] = sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str))
    engine.dispose()
    return out


def test_a_validated_plan_writes_the_rows_its_plan_file_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[str] = []
    real_model = objects._model

    def counted(model: Any, change: Any) -> Any:
        built.append(change.address)
        return real_model(model, change)

    monkeypatch.setattr(objects, "_model", counted)
    projects = _projects(tmp_path / "projects")
    assert len(projects) >= 3
    for project in projects:
        env = {"WP_EXAMPLE_TOKEN": "t", "DB_PASSWORD": "p", "IMAGE_TAG": "1"}
        url_fast, url_model = (
            f"sqlite:///{tmp_path}/{project.name}-a.db",
            f"sqlite:///{tmp_path}/{project.name}-b.db",
        )
        store = SqlStore(url_fast)
        outcome = plan_project(project, store, env=env, now=datetime.now(UTC))
        if outcome.plan is None:
            pytest.fail(f"{project.name}: {[d.format() for d in outcome.diagnostics]}")
        plan = outcome.plan
        assert plan.validated and plan.has_changes
        built.clear()
        apply_plan(store, plan, actor="t")
        # only what the attribute form cannot say as a row (an anchor date) builds its model
        assert built == (["schedule.f/full#i"] if project.name == "everything" else []), built
        # the same changes, as a plan file reads them back (secrets put back: this plan file is not masked)
        from_file = replace(plan_from_json(json.loads(json.dumps(plan_to_json(plan)))), changes=plan.changes)
        assert not from_file.validated
        apply_plan(SqlStore(url_model), from_file, actor="t")
        assert _rows(url_fast) == _rows(url_model), project.name
