"""terraform-provider-wp driven over its real process boundary, as Terraform drives it (TLS and plaintext).

Terraform's consistency rules are asserted where Terraform would check them: every known planned value
comes back
unchanged from apply, a new state has no unknowns, reformatted JSON never shows a diff."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from harness import Provider, dv, provider_command, val

from provider import codec
from provider._proto import tfplugin6_pb2 as pb
from provider.server import MAGIC_COOKIE_VALUE
from reconciler.model import pool_key
from reconciler.store.sql import SqlStore

POOL = "wp_work_pool"
QUEUE = "wp_work_queue"
DEPLOYMENT = "wp_deployment"


def assert_consistent(planned: dict[str, Any], new: dict[str, Any]) -> None:
    """Terraform's checks after apply: known planned values unchanged, nothing unknown left."""
    assert codec.is_wholly_known(new), new
    for name, value in planned.items():
        if codec.is_wholly_known(value):
            assert new[name] == value, f"{name}: planned {value!r}, applied {new[name]!r}"


def create(p: Provider, type_name: str, config: dict[str, Any]) -> dict[str, Any]:
    plan = p.plan(type_name, None, config)
    assert not plan.diagnostics, plan.diagnostics
    planned = val(plan.planned_state)
    resp = p.apply(type_name, None, plan.planned_state, config)
    assert not resp.diagnostics, resp.diagnostics
    new: dict[str, Any] = val(resp.new_state)
    assert_consistent(planned, new)
    return new


def diag_paths(items: Any) -> list[tuple[str | int, ...]]:
    """Paths of diagnostics, or of AttributePaths (requires_replace)."""
    return [codec.path_of(getattr(d, "attribute", d)) for d in items]


def test_run_by_hand_explains_itself() -> None:
    env = {k: v for k, v in os.environ.items() if k != "TF_PLUGIN_MAGIC_COOKIE"}
    out = subprocess.run(provider_command(), env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert "This binary is a plugin" in out.stderr and "Traceback" not in out.stderr
    assert out.stdout == ""


def test_refuses_a_client_without_protocol_6() -> None:
    env = dict(os.environ, TF_PLUGIN_MAGIC_COOKIE=MAGIC_COOKIE_VALUE, PLUGIN_PROTOCOL_VERSIONS="5")
    out = subprocess.run(provider_command(), env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 1 and "protocol 6" in out.stderr


def test_schema_health_unimplemented_and_shutdown(provider: Provider) -> None:
    assert provider.health() == 1  # SERVING
    schema = provider.stub.GetProviderSchema(pb.GetProviderSchema.Request(), timeout=30)
    assert set(schema.resource_schemas) == {POOL, QUEUE, DEPLOYMENT}
    assert set(schema.data_source_schemas) == {"wp_work_pool", "wp_default_base_job_template"}
    pool = {a.name: a for a in schema.resource_schemas[POOL].block.attributes}
    assert pool["name"].required and pool["base_job_template"].optional and pool["base_job_template"].computed
    assert json.loads(pool["concurrency_limit"].type) == "number"
    assert {a.name: a for a in schema.provider.block.attributes}["api_key"].sensitive
    dep = {a.name: a for a in schema.resource_schemas[DEPLOYMENT].block.attributes}
    assert dep["schedules"].nested_type.nesting == pb.Schema.Object.LIST
    assert {a.name for a in dep["schedules"].nested_type.attributes} >= {
        "slug",
        "cron",
        "interval",
        "rrule",
        "timezone",
        "active",
    }
    assert provider.stub.StopProvider(pb.StopProvider.Request(), timeout=5).Error == ""
    assert provider.shutdown() == 0


def test_validate_points_at_the_attribute(provider: Provider) -> None:
    diags = provider.validate(POOL, {"name": "p", "base_job_template": "{not json"})
    assert diag_paths(diags) == [("base_job_template",)]
    diags = provider.validate(POOL, {"name": "a/b"})
    assert diag_paths(diags) == [("name",)] and "may not contain" in diags[0].summary
    # unknown values are fine at validate time
    assert provider.validate(POOL, {"name": codec.UNKNOWN, "type": "process"}) == []
    diags = provider.validate(
        DEPLOYMENT,
        {
            "name": "n",
            "entrypoint": "f.py:f",
            "schedules": [{"slug": "s", "cron": "* * * * *", "interval": 5}],
        },
    )
    assert diag_paths(diags) == [("schedules", 0)]


def test_pool_lifecycle_with_drift_import_and_destroy(provider: Provider, db_url: str) -> None:
    assert provider.configure(project="infra") == []
    # plan with an unknown (from another resource): it stays unknown; the rest is planned
    plan = provider.plan(POOL, None, {"name": "p1", "description": codec.UNKNOWN})
    planned = val(plan.planned_state)
    assert (
        planned["description"] is codec.UNKNOWN
        and planned["type"] == "process"
        and planned["paused"] is False
    )
    assert (
        json.loads(planned["base_job_template"])["variables"]["properties"]["stream_output"]["default"]
        is True
    )

    template = {
        "job_configuration": {"command": "{{ command }}"},
        "variables": {"type": "object", "properties": {"command": {"type": "string"}}},
    }
    spaced = json.dumps(template, indent=4)
    cfg = {"name": "p1", "concurrency_limit": 2, "base_job_template": spaced}
    state = create(provider, POOL, cfg)
    assert state["base_job_template"] == spaced  # the user's spelling is kept
    assert state["id"] == "p1"
    store = SqlStore(db_url)
    live = store.snapshot().get(pool_key("p1"))
    assert live is not None and live.owner == "infra"

    # reformatted JSON: no diff, the prior spelling is planned
    compact = json.dumps(template, separators=(",", ":"))
    plan = provider.plan(POOL, state, {**cfg, "base_job_template": compact})
    assert val(plan.planned_state) == state and not plan.requires_replace

    # drift made through the store shows on read, and plans back
    store.update_work_pool("p1", concurrency_limit=7, paused=True)
    read = val(provider.read(POOL, state).new_state)
    assert read["concurrency_limit"] == 7 and read["paused"] is True
    assert read["base_job_template"] == spaced
    plan = provider.plan(POOL, read, cfg)
    back = val(plan.planned_state)
    assert back["concurrency_limit"] == 2 and back["paused"] is False
    resp = provider.apply(POOL, read, plan.planned_state, cfg)
    assert_consistent(back, val(resp.new_state))
    assert store.get_work_pool("p1").concurrency_limit == 2

    # type change forces replacement
    plan = provider.plan(POOL, val(resp.new_state), {**cfg, "type": "docker"})
    assert diag_paths(plan.requires_replace) == [("type",)]

    # import by name gives the full state, template included, so the next plan is clean
    imp = provider.stub.ImportResourceState(
        pb.ImportResourceState.Request(type_name=POOL, id="p1"), timeout=30
    )
    imported = val(imp.imported_resources[0].state)
    assert json.loads(imported["base_job_template"]) == template
    plan = provider.plan(POOL, imported, cfg)
    assert not plan.requires_replace
    assert {k: v for k, v in val(plan.planned_state).items()} == {
        **imported,
        "base_job_template": imported["base_job_template"],
    }
    bad = provider.stub.ImportResourceState(
        pb.ImportResourceState.Request(type_name=POOL, id="nope"), timeout=30
    )
    assert "not found" in bad.diagnostics[0].summary

    # destroy: planned_state null -> new_state null; a later read drops it from state
    resp = provider.apply(POOL, imported, None, None)
    assert not resp.diagnostics and val(resp.new_state) is None
    assert val(provider.read(POOL, imported).new_state) is None


def test_queue_priority_is_computed_and_pool_move_replaces(provider: Provider) -> None:
    provider.configure()
    create(provider, POOL, {"name": "qp"})
    plan = provider.plan(QUEUE, None, {"work_pool": "qp", "name": "high"})
    assert val(plan.planned_state)["priority"] is codec.UNKNOWN
    q = create(provider, QUEUE, {"work_pool": "qp", "name": "high", "concurrency_limit": 3})
    assert isinstance(q["priority"], int) and q["id"] == "qp/high"
    plan = provider.plan(QUEUE, q, {"work_pool": "other", "name": "high"})
    assert diag_paths(plan.requires_replace) == [("work_pool",)]
    imp = provider.stub.ImportResourceState(
        pb.ImportResourceState.Request(type_name=QUEUE, id="qp/high"), timeout=30
    )
    assert val(imp.imported_resources[0].state) == q
    bad = provider.stub.ImportResourceState(
        pb.ImportResourceState.Request(type_name=QUEUE, id="high"), timeout=30
    )
    assert "POOL/QUEUE" in bad.diagnostics[0].summary


def test_deployment_lifecycle(provider: Provider, db_url: str) -> None:
    provider.configure()
    create(provider, POOL, {"name": "dp"})
    cfg = {
        "name": "nightly",
        "entrypoint": "flows/etl.py:run_etl",
        "work_pool": "dp",
        "job_variables": json.dumps({"env": {"A": "1"}}, indent=2),
        "schedules": [{"slug": "n", "cron": "0 2 * * *", "timezone": "Europe/Berlin"}],
        "tags": ["etl"],
    }
    plan = provider.plan(DEPLOYMENT, None, cfg)
    planned = val(plan.planned_state)
    assert planned["flow"] == "run-etl" and planned["id"] == "run-etl/nightly"
    assert planned["schedules"][0]["active"] is True
    state = create(provider, DEPLOYMENT, cfg)
    store = SqlStore(db_url)
    live = store.get_deployment("run-etl", "nightly")
    assert live.job_variables == {"env": {"A": "1"}} and live.schedules[0].cron == "0 2 * * *"

    # job variables the pool's schema refuses: a diagnostic at plan time, on the attribute
    plan = provider.plan(DEPLOYMENT, state, {**cfg, "job_variables": json.dumps({"imagez": "x"})})
    assert diag_paths(plan.diagnostics) == [("job_variables",)]
    assert "imagez" in plan.diagnostics[0].detail

    # schedules keyed by slug: change one, add one
    cfg2 = {**cfg, "schedules": [{"slug": "n", "cron": "0 3 * * *"}, {"slug": "h", "interval": 3600}]}
    plan = provider.plan(DEPLOYMENT, state, cfg2)
    assert not plan.diagnostics and not plan.requires_replace
    resp = provider.apply(DEPLOYMENT, state, plan.planned_state, cfg2)
    assert not resp.diagnostics, resp.diagnostics
    state2 = val(resp.new_state)
    assert_consistent(val(plan.planned_state), state2)
    assert sorted(s.slug for s in store.get_deployment("run-etl", "nightly").schedules) == ["h", "n"]

    imp = provider.stub.ImportResourceState(
        pb.ImportResourceState.Request(type_name=DEPLOYMENT, id="run-etl/nightly"), timeout=30
    )
    imported = val(imp.imported_resources[0].state)
    assert json.loads(imported["job_variables"]) == {"env": {"A": "1"}}
    replan = provider.plan(DEPLOYMENT, imported, cfg2)
    assert not replan.requires_replace and not replan.diagnostics

    resp = provider.apply(DEPLOYMENT, state2, None, None)
    assert not resp.diagnostics and val(resp.new_state) is None
    assert store.list_deployments() == []


def test_upgrade_drops_removed_attributes(provider: Provider) -> None:
    raw = {
        "id": "p",
        "name": "p",
        "type": "process",
        "paused": False,
        "removed_in_v2": "x",
        "description": None,
        "concurrency_limit": 1,
        "base_job_template": "{}",
    }
    resp = provider.stub.UpgradeResourceState(
        pb.UpgradeResourceState.Request(
            type_name=POOL, version=0, raw_state=pb.RawState(json=json.dumps(raw).encode())
        ),
        timeout=30,
    )
    assert not resp.diagnostics
    up = val(resp.upgraded_state)
    assert "removed_in_v2" not in up and up["concurrency_limit"] == 1


def test_data_sources(provider: Provider) -> None:
    provider.configure()
    create(provider, POOL, {"name": "ds"})
    schema = {"id": None, "type": "kubernetes", "template": None}
    resp = provider.stub.ReadDataSource(
        pb.ReadDataSource.Request(type_name="wp_default_base_job_template", config=dv(schema)), timeout=30
    )
    tmpl = json.loads(val(resp.state)["template"])
    assert "job_manifest" in tmpl["job_configuration"]
    cfg = {
        "id": None,
        "name": "ds",
        "type": None,
        "description": None,
        "paused": None,
        "concurrency_limit": None,
        "base_job_template": None,
        "status": None,
    }
    resp = provider.stub.ReadDataSource(
        pb.ReadDataSource.Request(type_name="wp_work_pool", config=dv(cfg)), timeout=30
    )
    assert val(resp.state)["status"] == "NOT_READY"
    resp = provider.stub.ReadDataSource(
        pb.ReadDataSource.Request(type_name="wp_work_pool", config=dv({**cfg, "name": "missing"})), timeout=30
    )
    assert diag_paths(resp.diagnostics) == [("name",)]


def test_unknown_resource_type_is_a_diagnostic(provider: Provider) -> None:
    resp = provider.stub.ValidateResourceConfig(
        pb.ValidateResourceConfig.Request(type_name="wp_nope", config=dv({})), timeout=30
    )
    assert "Unknown resource type" in resp.diagnostics[0].summary
    _ = sys
