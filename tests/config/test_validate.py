"""validate_references: deployments whose pool the config does not declare, checked against the store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from reconciler.config.load import load_project
from reconciler.config.validate import validate_references
from reconciler.engine.job_templates import default_base_job_template
from reconciler.model import WorkPool

Write = Callable[..., Path]

CONFIG = """
project: p
work_pools: [{name: mine, type: process}]
deployments:
  - name: d
    entrypoint: flows/etl.py:etl
    work_pool:
      name: shared
      job_variables: {image: x}
"""


def test_pool_that_exists_nowhere_names_the_deployment(write: Write) -> None:
    loaded = load_project(write({"wp.yaml": CONFIG}), {})
    assert loaded.desired is not None
    [diag] = validate_references(loaded.desired, loaded.sources, {"mine2": WorkPool(name="mine2")})
    assert "deployment 'etl-flow/d' uses work pool 'shared'" in diag.summary
    assert (diag.file, diag.line, diag.column, diag.field_path) == (
        "wp.yaml",
        7,
        13,
        "deployments[0].work_pool.name",
    )
    assert "wp work-pool create shared" in diag.detail


def test_pool_in_the_store_is_accepted_and_its_schema_checks_job_variables(write: Write) -> None:
    loaded = load_project(write({"wp.yaml": CONFIG}), {})
    assert loaded.desired is not None
    docker = WorkPool(name="shared", type="docker", base_job_template=default_base_job_template("docker"))
    assert validate_references(loaded.desired, loaded.sources, {"shared": docker}) == []
    process = WorkPool(name="shared", base_job_template=default_base_job_template("process"))
    [diag] = validate_references(loaded.desired, loaded.sources, {"shared": process})
    assert "image" in diag.summary and diag.line == 8


SHARED_TEMPLATES = """
project: p
work_pools:
  - {name: a, type: process}
  - {name: b, type: process}
  - name: custom
    type: process
    base_job_template:
      job_configuration: {command: "{{ cmd }}"}
      variables: {type: object, properties: {cmd: {type: string}}}
deployments:
  - {name: d1, entrypoint: flows/etl.py:etl, work_pool: {name: a, job_variables: {command: run}}}
  - {name: d2, entrypoint: flows/etl.py:etl, work_pool: {name: b, job_variables: {cmd: run}}}
  - {name: d3, entrypoint: flows/etl.py:etl, work_pool: {name: custom, job_variables: {cmd: run}}}
  - {name: d4, entrypoint: flows/etl.py:etl, work_pool: {name: custom, job_variables: {command: run}}}
"""


def test_job_variables_are_checked_against_each_pools_own_template(write: Write) -> None:
    """Pools with their type's default template share one checker; a pool of that type with its own template
    is checked against its own: each wrong variable is named for its deployment and pool."""
    loaded = load_project(write({"wp.yaml": SHARED_TEMPLATES}), {})
    errors = [(d.field_path, d.summary) for d in loaded.diagnostics]
    assert len(errors) == 2, errors
    assert errors[0][0] == "deployments[1].work_pool.job_variables.cmd" and "'cmd'" in errors[0][1]
    assert errors[1][0] == "deployments[3].work_pool.job_variables.command" and "'command'" in errors[1][1]
    assert "template allows: cmd" in errors[1][1]
