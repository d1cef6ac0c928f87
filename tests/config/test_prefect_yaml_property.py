"""Any prefect.yaml that Prefect's own schema accepts either loads or gives diagnostics placed at a file and
line, never a traceback (issue 11). Documents are drawn in the shape of Prefect's `PrefectYamlModel`
(prefect/cli/deploy/_models.py): every key it knows, with values of the types it accepts, nulls included."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.config.load import load_project
from reconciler.diagnostics import Severity
from tests.config.conftest import FLOW

WP_YAML = "project: p\nwork_pools: [{name: local, type: process}, {name: box, type: docker}]\n"
TEXTS = st.sampled_from(
    [
        "",
        "x",
        "etl",
        "{{ build-image.image }}",
        "{{ clone.directory }}",
        "{{ $HOME }}",
        "{{ $UNSET_VARIABLE_FOR_WP }}",
        "{{ prefect.blocks.secret.token }}",
        "{{ prefect.variables.team }}",
        "{{ ctx.flow_run.id }}",
        "${UNSET_VARIABLE_FOR_WP:-d}",
        "0 * * * *",
        "PT10M",
        "a/b",
    ]
) | st.text(max_size=12)
SCALARS = st.none() | st.booleans() | st.integers(-3, 10**6) | st.floats(allow_nan=False, width=32) | TEXTS
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXTS, inner, max_size=3),
    max_leaves=6,
)
STEP_NAMES = st.sampled_from(
    [
        "prefect.deployments.steps.git_clone",
        "prefect.projects.steps.git_clone_project",
        "set_working_directory",
        "prefect.deployments.steps.run_shell_script",
        "prefect.deployments.steps.pip_install_requirements",
        "prefect_aws.deployments.steps.pull_from_s3",
        "prefect_docker.deployments.steps.build_docker_image",
    ]
)
STEP_ARGS = st.none() | st.dictionaries(
    st.sampled_from(["id", "requires", "repository", "branch", "directory", "script", "image_name", "tag"]),
    SCALARS,
    max_size=3,
)
STEP = st.dictionaries(STEP_NAMES, STEP_ARGS, min_size=1, max_size=1)
STEPS = st.none() | st.lists(STEP, max_size=3) | STEP
SCHEDULE = (
    st.none()
    | st.just({})
    | st.fixed_dictionaries(
        {},
        optional={
            "cron": st.sampled_from(["0 * * * *", "*/5 * * * *", "61 * * * *"]),
            "interval": st.integers(1, 10**5) | st.sampled_from(["PT1H", "1:30:00", "soon"]),
            "rrule": st.sampled_from(["FREQ=DAILY", '{"rrule": "FREQ=HOURLY", "timezone": "UTC"}']),
            "timezone": st.sampled_from(["UTC", "Europe/Berlin", "Nowhere/Else"]),
            "anchor_date": st.sampled_from(["2024-01-01T00:00:00Z", "yesterday"]),
            "active": st.booleans() | st.just("{{ prefect.variables.on }}"),
            "day_or": st.booleans(),
            "slug": st.none() | TEXTS,
            "parameters": st.dictionaries(TEXTS, VALUES, max_size=2),
        },
    )
)
WORK_POOL = st.none() | st.fixed_dictionaries(
    {},
    optional={
        "name": st.none() | st.sampled_from(["local", "box", "{{ $UNSET_VARIABLE_FOR_WP }}"]),
        "work_queue_name": st.none() | st.sampled_from(["default", "missing"]),
        "job_variables": st.dictionaries(
            st.sampled_from(["env", "image", "working_dir", "stream_output", "unknown"]), VALUES, max_size=3
        ),
    },
)
DEPLOYMENT = st.fixed_dictionaries(
    {},
    optional={
        "name": st.none() | TEXTS,
        "version": st.none() | TEXTS,
        "tags": st.none() | TEXTS | st.lists(SCALARS, max_size=3),
        "description": st.none() | TEXTS,
        "schedule": SCHEDULE,
        "schedules": st.none() | st.lists(SCHEDULE, max_size=2),
        "paused": st.none() | st.booleans(),
        "concurrency_limit": st.none()
        | st.integers(0, 5)
        | st.fixed_dictionaries(
            {"limit": st.integers(1, 5)},
            optional={"collision_strategy": st.sampled_from(["ENQUEUE", "CANCEL_NEW"])},
        ),
        "flow_name": st.none() | TEXTS,
        "entrypoint": st.none()
        | st.sampled_from(
            ["flows/etl.py:etl", "flows.etl:etl", "flows.etl.etl", "pkg.mod:f", "nope.py:x", "x"]
        ),
        "parameters": st.dictionaries(
            st.sampled_from(["full_refresh", "other", "{{ x }}"]), VALUES, max_size=2
        ),
        "enforce_parameter_schema": st.none() | st.booleans(),
        "build": STEPS,
        "push": STEPS,
        "pull": STEPS,
        "work_pool": WORK_POOL,
        "triggers": st.none() | st.lists(st.dictionaries(TEXTS, SCALARS, max_size=2), max_size=1),
    },
)
DOCUMENT = st.fixed_dictionaries(
    {},
    optional={
        "name": st.none() | TEXTS,
        "prefect-version": st.sampled_from(["2.14.0", "3.1.4"]),
        "build": STEPS,
        "push": STEPS,
        "pull": STEPS,
        "deployments": st.lists(DEPLOYMENT, max_size=3),
    },
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=DOCUMENT)
def test_any_prefect_yaml_loads_or_is_diagnosed_at_a_line(document: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory(prefix="prefectyaml-") as tmp:
        root = Path(tmp)
        (root / "flows").mkdir()
        (root / "flows" / "etl.py").write_text(FLOW)
        (root / "wp.yaml").write_text(WP_YAML)
        (root / "prefect.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
        loaded = load_project(root, {"HOME": "/home/u"})  # never raises
    unplaced = [d.format() for d in loaded.diagnostics if d.file is None or d.line is None]
    assert unplaced == []
    if loaded.desired is None:
        assert any(d.severity is Severity.ERROR for d in loaded.diagnostics)
    else:
        for deployment in loaded.desired.deployments:  # nothing only `prefect deploy` can resolve is stored
            stored = repr(
                (deployment.parameters, deployment.job_variables, deployment.tags, deployment.version)
            )
            assert "build-image" not in stored and "prefect.blocks" not in stored


DEPLOY_TIME = st.sampled_from(
    [
        "{{ build-image.image }}",
        "{{ build-image.tag }}",
        "{{ prefect.blocks.secret.x }}",
        "{{ prefect.variables.v }}",
    ]
)
PLAIN = st.sampled_from(["etl:1", "x", "${TAG:-latest}", "{{ $HOME }}", "{{ ctx.flow_run.id }}"])
FIELDS = st.sampled_from(["version", "description", "tags", "parameters", "env", "pull"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(placed=st.lists(st.tuples(FIELDS, DEPLOY_TIME | PLAIN), max_size=4, unique_by=lambda p: p[0]))
def test_each_deploy_time_value_is_one_error_at_its_line_and_the_rest_loads(
    placed: list[tuple[str, str]],
) -> None:
    deployment: dict[str, Any] = {
        "name": "d",
        "entrypoint": "flows/etl.py:etl",
        "work_pool": {"name": "box", "job_variables": {"image": "etl:1"}},
    }
    for field, value in placed:
        if field == "tags":
            deployment["tags"] = [value]
        elif field == "parameters":
            deployment["parameters"] = {"other": value}
        elif field == "env":
            deployment["work_pool"]["job_variables"]["env"] = {"X": value}
        elif field == "pull":
            deployment["pull"] = [{"prefect.deployments.steps.set_working_directory": {"directory": value}}]
        else:
            deployment[field] = value
    document = {
        "build": [
            {"prefect_docker.deployments.steps.build_docker_image": {"id": "build-image", "image_name": "x"}}
        ],
        "deployments": [deployment],
    }
    with tempfile.TemporaryDirectory(prefix="prefectyaml-") as tmp:
        root = Path(tmp)
        (root / "flows").mkdir()
        (root / "flows" / "etl.py").write_text(FLOW)
        (root / "wp.yaml").write_text(WP_YAML)
        (root / "prefect.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
        loaded = load_project(root, {"HOME": "/home/u"})
    expected = sorted(value for _, value in placed if "build-image" in value or "prefect." in value)
    found = [d for d in loaded.diagnostics if d.severity is Severity.ERROR]
    assert sorted(d.summary.split("'")[1] for d in found) == expected
    assert all(d.file == "prefect.yaml" and d.line for d in found)
    assert (loaded.desired is None) == bool(expected)
