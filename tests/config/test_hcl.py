"""`*.tf` files as wp configuration: what `wp plan` reads of them, where it points at problems, what
`wp export --format tf` writes, and that the two tools agree on ownership."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from reconciler.config.hcl import load_tf
from reconciler.config.hcl_export import export_tf
from reconciler.config.load import load_project
from reconciler.engine.apply import apply_plan
from reconciler.engine.plan import Action
from reconciler.pipeline import plan_project
from reconciler.store.sql import SqlStore

Write = Callable[..., Path]

MAIN_TF = """
terraform {
  required_providers {
    wp = { source = "wp-gitops/wp" }
  }
}

provider "wp" {
  project = "data"
}

variable "limit" {
  type    = number
  default = 4
}

locals {
  team = "etl"
}

resource "wp_work_pool" "prod" {
  name              = "prod"
  concurrency_limit = var.limit
  description       = "owned by ${local.team}"
  base_job_template = <<-EOT
    {"job_configuration": {"command": "{{ command }}"},
     "variables": {"type": "object", "properties": {"command": {"type": "string"}}}}
  EOT
  lifecycle {
    prevent_destroy = true
  }
}

resource "wp_work_queue" "critical" {
  work_pool = wp_work_pool.prod.name
  name      = "critical"
  priority  = 1
}

resource "wp_deployment" "nightly" {
  name          = "nightly"
  entrypoint    = "flows/etl.py:etl"
  work_pool     = wp_work_pool.prod.id
  work_queue    = wp_work_queue.critical.name
  job_variables = jsonencode({ command = "echo $${HOME}" })
  parameters    = jsonencode({ full_refresh = true })
  tags          = ["etl"]
  schedules = [
    { slug = "nightly", cron = "0 2 * * *", timezone = "Europe/Berlin" },
  ]
}
"""


def test_a_directory_with_only_tf_files_is_a_project_named_by_its_provider(write: Write) -> None:
    loaded = load_project(write({"main.tf": MAIN_TF}), {"HOME": "/x"})
    assert [d.format() for d in loaded.diagnostics] == []
    desired = loaded.desired
    assert desired is not None and desired.project == "data"
    (pool,) = desired.pools
    assert (pool.name, pool.type, pool.concurrency_limit) == ("prod", "process", 4)
    assert pool.description == "owned by etl"
    assert pool.base_job_template is not None
    assert pool.base_job_template.job_configuration == {"command": "{{ command }}"}
    assert [(q.name, q.priority) for q in desired.queues] == [("critical", 1)]
    (dep,) = desired.deployments
    # Terraform's flow is the function name even though @flow(name="etl-flow") says otherwise
    assert (dep.flow, dep.work_pool, dep.work_queue) == ("etl", "prod", "critical")
    assert dep.job_variables == {"command": "echo ${HOME}"}  # $${ is a literal ${, as in Terraform
    assert dep.parameters == {"full_refresh": True}
    assert [(s.slug, s.cron, s.timezone) for s in dep.schedules] == [
        ("nightly", "0 2 * * *", "Europe/Berlin")
    ]
    assert desired.lifecycle["work_pool.prod"].protect
    assert "main.tf" in loaded.files


def test_variables_come_from_tf_var_environment_and_default_project_is_terraform(write: Write) -> None:
    tf = MAIN_TF.replace('  project = "data"\n', "")
    loaded = load_project(write({"main.tf": tf}), {"TF_VAR_limit": "9"})
    assert loaded.desired is not None
    assert loaded.desired.project == "terraform"
    assert loaded.desired.pools[0].concurrency_limit == 9


def test_problems_point_at_the_tf_file_and_line(write: Write) -> None:
    tf = MAIN_TF.replace(
        '  tags          = ["etl"]', '  tags          = [for t in var.tags : t]\n  colour = "red"'
    )
    docs, diagnostics = load_tf(write({"main.tf": tf}), {})
    assert docs
    found = {(d.file, d.line): d.summary for d in diagnostics}
    line_of = {text: n for n, text in enumerate(tf.lstrip("\n").splitlines(), 1)}
    tags_line = next(n for t, n in line_of.items() if t.startswith("  tags"))
    colour_line = next(n for t, n in line_of.items() if t.startswith("  colour"))
    assert "wp cannot evaluate" in found[("main.tf", tags_line)]
    assert "has no attribute 'colour'" in found[("main.tf", colour_line)]


def test_engine_errors_land_on_the_tf_line(write: Write) -> None:
    tf = MAIN_TF.replace('jsonencode({ command = "echo $${HOME}" })', 'jsonencode({ image = "x" })')
    loaded = load_project(write({"main.tf": tf}), {})
    (problem,) = [d for d in loaded.diagnostics if "image" in d.summary]
    line = next(n for n, t in enumerate(tf.lstrip("\n").splitlines(), 1) if "image" in t)
    assert (problem.file, problem.line) == ("main.tf", line)


def test_malformed_hcl_is_a_diagnostic_not_a_traceback(write: Write) -> None:
    loaded = load_project(write({"main.tf": 'resource "wp_work_pool" "x" {\n  name = \n}\n'}), {})
    assert loaded.desired is None
    assert any(d.file == "main.tf" and "malformed HCL" in d.summary for d in loaded.diagnostics)


def test_wp_yaml_next_to_tf_must_name_the_same_project(write: Write) -> None:
    directory = write({"main.tf": MAIN_TF, "wp.yaml": "project: other\n"})
    loaded = load_project(directory, {})
    assert loaded.desired is None
    (problem,) = [d for d in loaded.diagnostics if "project" in d.summary]
    assert "'other'" in problem.summary and "'data'" in problem.summary
    assert problem.file == "main.tf" and 'project = "other"' in problem.detail


def test_wp_yaml_and_tf_with_the_same_project_merge(write: Write) -> None:
    yaml = """
    project: data
    work_pools:
      - name: side
    """
    loaded = load_project(write({"main.tf": MAIN_TF, "wp.yaml": yaml}), {})
    assert loaded.desired is not None
    assert [p.name for p in loaded.desired.pools] == ["prod", "side"]


def test_tf_files_without_wp_resources_are_ignored(write: Write) -> None:
    other = 'resource "aws_s3_bucket" "b" {\n  bucket = "x"\n}\n'
    directory = write({"main.tf": other, "wp.yaml": "project: p\n"})
    assert load_tf(directory, {}) == ([], [])
    assert load_project(directory, {}).desired is not None


def test_applied_by_wp_from_tf_files_is_then_in_sync(write: Write, tmp_path: Path) -> None:
    directory = write({"main.tf": MAIN_TF})
    store = SqlStore(f"sqlite:///{tmp_path / 'wp.db'}")
    now = datetime(2025, 1, 1, tzinfo=UTC)
    first = plan_project(directory, store, env={}, now=now)
    assert first.plan is not None
    apply_plan(store, first.plan, actor="test")
    assert store.snapshot().objects  # written, owned by the provider's project
    owners = {o.owner for o in store.snapshot().objects.values()}
    assert owners == {"data"}
    again = plan_project(directory, store, env={}, now=now)
    assert again.plan is not None
    assert all(c.action is Action.NOOP for c in again.plan.changes)


def test_export_writes_tf_that_reads_back_the_same(write: Write, tmp_path: Path) -> None:
    document = {
        "project": "data",
        "work_pools": [
            {
                "name": "k8s-prod",
                "type": "kubernetes",
                "concurrency_limit": 3,
                "base_job_template": {"job_configuration": {"x": "{{ x }}"}, "variables": {"type": "object"}},
                "queues": [{"name": "critical", "priority": 1}, {"name": "default", "priority": 2}],
            }
        ],
        "deployments": [
            {
                "name": "nightly",
                "flow": "etl",
                "entrypoint": "flows/etl.py:etl",
                "description": 'say "hi" to ${nobody}',
                "work_pool": {
                    "name": "k8s-prod",
                    "job_variables": {"env": {"API_TOKEN": "${NIGHTLY_API_TOKEN}"}},
                },
                "schedules": [{"slug": "n", "interval": 600, "parameters": {"a": 1}}],
                "tags": ["etl"],
            }
        ],
    }
    text = export_tf(document)
    assert 'source = "wp-gitops/wp"' in text and 'project = "data"' in text
    assert "work_pool = wp_work_pool.k8s_prod.name" in text
    assert 'variable "NIGHTLY_API_TOKEN"' in text and "sensitive = true" in text
    assert 'to = wp_deployment.etl_nightly\n  id = "etl/nightly"' in text
    directory = write({"main.tf": text})
    docs, diagnostics = load_tf(directory, {"TF_VAR_NIGHTLY_API_TOKEN": "s3cret"})
    assert diagnostics == []
    (doc,) = docs
    assert doc.project == "data"
    pool = doc.value["work_pools"][0]
    assert pool["queues"] == document["work_pools"][0]["queues"]  # type: ignore[index]
    assert pool["base_job_template"] == document["work_pools"][0]["base_job_template"]  # type: ignore[index]
    dep = doc.value["deployments"][0]
    assert dep["description"] == 'say "hi" to $${nobody}'  # literal, loading turns $${ into ${
    assert dep["work_pool"]["job_variables"] == {"env": {"API_TOKEN": "s3cret"}}
    assert dep["schedules"] == [{"slug": "n", "interval": 600, "parameters": {"a": 1}}]
