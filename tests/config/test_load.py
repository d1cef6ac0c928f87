"""load_project: a project directory -> DesiredState, or every error with file:line:column."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.config import load, reader
from reconciler.config.load import LoadedConfig, Location, load_project
from reconciler.diagnostics import Severity
from reconciler.model import Lifecycle

Write = Callable[..., Path]

SPEC_EXAMPLE = """
project: data-platform
include: ["pools/*.yaml", "deployments/**/*.yaml"]
work_pools:
  - name: k8s-prod
    type: kubernetes
    description: Production jobs
    concurrency_limit: 20
    base_job_template: !file templates/k8s.json
    protect: true
    ignore_changes: [paused]
    queues:
      - {name: critical, priority: 1, concurrency_limit: 1}
      - {name: high, priority: 5, concurrency_limit: 3}
deployments:
  - name: nightly
    entrypoint: flows/etl.py:etl
    parameters: {full_refresh: false}
    work_pool:
      name: k8s-prod
      work_queue_name: high
      job_variables: {image: "repo/etl:${TAG:-latest}", env: {LOG_LEVEL: info}}
    schedules:
      - {slug: nightly, cron: "0 2 * * *", timezone: Europe/Berlin}
    tags: [etl]
"""

K8S_TEMPLATE = {
    "job_configuration": {"image": "{{ image }}", "env": "{{ env }}", "token": "{{ $API_TOKEN }}"},
    "variables": {
        "type": "object",
        "properties": {
            "image": {"type": "string", "default": "python:3.11"},
            "env": {"type": "object", "additionalProperties": {"type": "string"}},
            "$API_TOKEN": {"type": "string"},
        },
    },
}


def errors(result: LoadedConfig) -> list[str]:
    return [d.format() for d in result.diagnostics if d.severity is Severity.ERROR]


def test_spec_example_with_include_and_file_tag_loads(write: Write) -> None:
    root = write(
        {
            "wp.yaml": SPEC_EXAMPLE,
            "templates/k8s.json": json.dumps({**K8S_TEMPLATE, "job_configuration": {"image": "{{ image }}"}}),
            "pools/low.yaml": """
                work_pools:
                  - {name: process-pool, type: process}
            """,
            "deployments/team/a/more.yaml": """
                deployments:
                  - {name: adhoc, entrypoint: flows/etl.py:plain_function}
            """,
        }
    )
    result = load_project(root, {"TAG": "v2"})
    assert errors(result) == []
    desired = result.desired
    assert desired is not None
    assert [p.name for p in desired.pools] == ["k8s-prod", "process-pool"]
    assert [(q.work_pool, q.name, q.priority) for q in desired.queues] == [
        ("k8s-prod", "critical", 1),
        ("k8s-prod", "high", 5),
    ]
    by_name = {d.name: d for d in desired.deployments}
    assert by_name["nightly"].flow == "etl-flow"  # from @flow(name=...), read statically
    assert by_name["nightly"].job_variables["image"] == "repo/etl:v2"
    assert by_name["adhoc"].flow == "plain-function"
    assert by_name["adhoc"].work_queue == "default" and by_name["adhoc"].work_pool is None
    assert desired.lifecycle["work_pool.k8s-prod"] == Lifecycle(protect=True, ignore_changes=("paused",))
    assert desired.pools[1].base_job_template is not None  # the process type's default
    assert "deployments/team/a/more.yaml" in result.files
    # the source map points at the included file, not at wp.yaml
    assert result.sources.locate("deployment.plain-function/adhoc") == Location(
        "deployments/team/a/more.yaml", 2, 5
    )
    assert result.sources.locate("work_pool.k8s-prod", ("concurrency_limit",)) == Location("wp.yaml", 7, 24)
    assert result.sources.locate("deployment.etl-flow/nightly", ("work_pool",)) == Location("wp.yaml", 19, 13)


def test_dollar_env_in_base_job_template_is_left_for_the_worker(write: Write) -> None:
    root = write(
        {
            "wp.yaml": """
                project: p
                work_pools:
                  - name: pool
                    base_job_template: !file t.json
            """,
            "t.json": json.dumps(K8S_TEMPLATE),
        }
    )
    result = load_project(root, {})
    assert errors(result) == []
    assert result.desired is not None
    template = result.desired.pools[0].base_job_template
    assert template is not None
    assert template.job_configuration["token"] == "{{ $API_TOKEN }}"


def test_prefect_yaml_with_anchors_pull_default_and_ignored_keys(write: Write) -> None:
    root = write(
        {
            "wp.yaml": "project: p\nwork_pools: [{name: local, type: process}]\n",
            "prefect.yaml": """
                name: my-project
                prefect-version: 3.1.0
                build: [{prefect_docker.deployments.steps.build_docker_image: {image_name: x}}]
                push: null
                pull:
                  - prefect.deployments.steps.git_clone: {repository: "https://x.org/r.git", branch: main}
                definitions:
                  work_pools:
                    local: &local
                      name: local
                      work_queue_name: null
                      job_variables: {env: {REGION: "{{ $REGION }}"}}
                deployments:
                  - name: first
                    entrypoint: flows/etl.py:etl
                    work_pool: *local
                    schedule: {cron: "*/5 * * * *"}
                    triggers: [{enabled: true}]
                    enforce_parameter_schema: false
                    description: null
                  - name: second
                    flow_name: custom
                    entrypoint: flows/etl.py:plain_function
                    work_pool: *local
                    pull: []
                    triggers: []
            """,
        }
    )
    result = load_project(root, {"REGION": "eu"})
    assert errors(result) == []
    warnings = [d.summary for d in result.diagnostics if d.severity is Severity.WARNING]
    # each ignored key once, even though `triggers` appears twice
    assert sorted(warnings) == sorted(
        [
            "prefect.yaml: 'build' is ignored",
            "prefect.yaml: 'triggers' is ignored",
            "prefect.yaml: 'enforce_parameter_schema' is ignored",
            # Prefect ignores flow_name and registers the function's flow
            "'flow_name: custom' is ignored: Prefect registers the flow as 'plain-function'",
        ]
    )
    assert result.desired is not None
    first, second = sorted(result.desired.deployments, key=lambda d: d.name)
    assert first.flow == "etl-flow" and second.flow == "plain-function"
    assert first.job_variables == {"env": {"REGION": "eu"}}
    assert first.work_queue == "default" and first.work_pool == "local"
    assert len(first.schedules) == 1 and first.schedules[0].cron == "*/5 * * * *"
    assert first.pull_steps[0]["prefect.deployments.steps.git_clone"]["branch"] == "main"
    assert second.pull_steps == ()


def test_malformed_yaml_gives_one_error_at_its_line(write: Write) -> None:
    root = write({"wp.yaml": "project: p\nwork_pools:\n  - name: a\n   type: process\n"})
    result = load_project(root, {})
    assert result.desired is None
    assert len(result.diagnostics) == 1
    diag = result.diagnostics[0]
    assert diag.file == "wp.yaml" and diag.line == 4
    assert diag.summary.startswith("malformed YAML")


def test_unknown_field_names_the_near_miss(write: Write) -> None:
    root = write({"wp.yaml": "project: p\nwork_pools:\n  - name: a\n    concurency_limit: 3\n"})
    result = load_project(root, {})
    assert errors(result) == [
        "wp.yaml:4:5: error: unknown field 'concurency_limit' (at work_pools[0].concurency_limit)\n"
        "    did you mean 'concurrency_limit'? Allowed fields: base_job_template, concurrency_limit, "
        "description, ignore_changes, name, paused, protect, queues, type"
    ]


def test_wrong_type_points_at_the_value(write: Write) -> None:
    root = write({"wp.yaml": "project: p\nwork_pools:\n  - name: a\n    concurrency_limit: lots\n"})
    [diag] = load_project(root, {}).diagnostics
    assert (diag.file, diag.line, diag.column, diag.field_path) == (
        "wp.yaml",
        4,
        24,
        "work_pools[0].concurrency_limit",
    )
    assert diag.summary == "wrong value for 'concurrency_limit': expected an integer >= 0"
    assert diag.detail == "got 'lots'; write an integer >= 0 here"


def test_duplicates_are_each_reported_with_the_first_location(write: Write) -> None:
    root = write(
        {
            "wp.yaml": """
                project: p
                work_pools:
                  - name: a
                    queues: [{name: q, priority: 1}, {name: r, priority: 1}, {name: q, priority: 2}]
                  - name: a
                deployments:
                  - {name: d, entrypoint: flows/etl.py:etl}
                  - {name: d, entrypoint: flows/etl.py:etl}
                  - name: s
                    entrypoint: flows/etl.py:etl
                    schedules: [{slug: x, interval: 60}, {slug: x, interval: 30}]
            """
        }
    )
    found = errors(load_project(root, {}))
    assert len(found) == 5
    text = "\n".join(found)
    assert "wp.yaml:4:58: error: duplicate queue priority 1" in text
    assert "wp.yaml:4:69: error: duplicate queue name 'q'" in text
    assert (
        "wp.yaml:5:11: error: duplicate work pool name 'a'" in text and "first declared at wp.yaml:3" in text
    )
    assert "wp.yaml:8:12: error: duplicate deployment 'etl-flow/d'" in text
    assert "wp.yaml:11:49: error: duplicate schedule slug 'x'" in text


def test_name_with_slash_is_refused(write: Write) -> None:
    root = write({"wp.yaml": "project: p\nwork_pools:\n  - name: team/a\n"})
    [diag] = load_project(root, {}).diagnostics
    assert (diag.line, diag.column, diag.field_path) == (3, 11, "work_pools[0].name")
    assert "contains /" in diag.summary


def test_undeclared_placeholder_is_reported_in_the_template_file(write: Write) -> None:
    template = {
        "job_configuration": {"cmd": "{{ command }}"},
        "variables": {"type": "object", "properties": {}},
    }
    root = write(
        {
            "wp.yaml": "project: p\nwork_pools:\n  - name: a\n    base_job_template: !file t/a.json\n",
            "t/a.json": json.dumps(template, indent=2),
        }
    )
    [diag] = load_project(root, {}).diagnostics
    assert (diag.file, diag.line, diag.field_path) == ("t/a.json", 3, "job_configuration.cmd")
    assert "command" in diag.summary


def test_job_variables_unknown_key_and_wrong_type(write: Write) -> None:
    root = write(
        {
            "wp.yaml": """
                project: p
                work_pools: [{name: a, type: process}]
                deployments:
                  - name: d
                    entrypoint: flows/etl.py:etl
                    work_pool:
                      name: a
                      job_variables:
                        imagee: x
                        stream_output: "yes please"
            """
        }
    )
    found = errors(load_project(root, {}))
    assert len(found) == 2
    assert found[0].startswith("wp.yaml:9:17: error:") and "imagee" in found[0]
    assert "work_pool.job_variables.imagee" in found[0]
    assert found[1].startswith("wp.yaml:10:24: error:") and "stream_output" in found[1]


def test_missing_env_var_names_it(write: Write) -> None:
    root = write({"wp.yaml": "project: p\nwork_pools:\n  - name: a\n    description: ${WHO}\n"})
    [diag] = load_project(root, {}).diagnostics
    assert diag.format() == (
        "wp.yaml:4:18: error: environment variable 'WHO' is not set (at work_pools[0].description)\n"
        "    set WHO in the environment, or give a default: ${WHO:-default}"
    )


def test_missing_file_tag_is_reported_at_the_tag(write: Write) -> None:
    root = write(
        {"wp.yaml": "project: p\nwork_pools:\n  - name: a\n    base_job_template: !file nope.json\n"}
    )
    [diag] = load_project(root, {}).diagnostics
    assert (diag.file, diag.line, diag.column) == ("wp.yaml", 4, 24)
    assert diag.summary == "file 'nope.json' does not exist"


def test_entrypoint_file_and_function_must_exist(write: Write) -> None:
    root = write(
        {
            "wp.yaml": """
                project: p
                deployments:
                  - {name: a, entrypoint: flows/missing.py:etl}
                  - {name: b, entrypoint: flows/etl.py:etll}
                  - {name: c, entrypoint: flows/etl.etl}
            """
        }
    )
    found = errors(load_project(root, {}))
    assert found == [
        "wp.yaml:3:27: error: entrypoint file 'flows/missing.py' does not exist"
        " (at deployments[0].entrypoint)\n"
        f"    entrypoint paths are relative to the project directory {root}",
        "wp.yaml:4:27: error: 'flows/etl.py' defines no function 'etll' (at deployments[1].entrypoint)\n"
        "    did you mean 'etl'? Functions defined at top level: etl, plain_function",
        "wp.yaml:5:27: error: entrypoint 'flows/etl.etl' is neither path/to/file.py:function nor"
        " package.module:function (at deployments[2].entrypoint)\n"
        "    write the flow file's path relative to the project directory, ':', the function name"
        " (flows/etl.py:etl), or a module path (pkg.flows:etl)",
    ]


def test_all_errors_of_a_config_are_reported_at_once(write: Write) -> None:
    root = write(
        {
            "wp.yaml": """
                project: p
                include: [more.yaml]
                work_pools:
                  - name: a
                    paused: maybe
                    queues: [{name: q, priority: 0}]
                deployments:
                  - {name: d, entrypoint: flows/etl.py:nope, work_pool: {name: a, work_queue_name: zz}}
            """,
            "more.yaml": "work_pools:\n  - name: b\n    tipe: process\n",
        }
    )
    result = load_project(root, {})
    assert result.desired is None
    where = [(d.file, d.line) for d in result.diagnostics]
    assert where == [("more.yaml", 3), ("wp.yaml", 5), ("wp.yaml", 6), ("wp.yaml", 8), ("wp.yaml", 8)]


def test_missing_wp_yaml_is_one_clear_error(write: Write) -> None:
    root = write({}, with_flow=False)
    [diag] = load_project(root, {}).diagnostics
    assert diag.summary.startswith("no wp.yaml in") and "wp init" in diag.detail


def test_missing_project_is_reported(write: Write) -> None:
    root = write({"wp.yaml": "work_pools: []\n"})
    [diag] = load_project(root, {}).diagnostics
    assert diag.summary == "missing required field 'project'"
    assert (diag.file, diag.line) == ("wp.yaml", 1)


def test_secret_patterns_extend_the_defaults(write: Write) -> None:
    root = write({"wp.yaml": 'project: p\nsecret_patterns: ["*CRED*"]\n'})
    desired = load_project(root, {}).desired
    assert desired is not None
    assert desired.secret_patterns == ("*TOKEN*", "*SECRET*", "*PASSWORD*", "*KEY*", "*CRED*")


def test_env_references_are_substituted_in_whichever_file_holds_them(write: Write) -> None:
    """wp.yaml has no `$`, the included file and the `!file` target do: both are still substituted."""
    root = write(
        {
            "wp.yaml": """
                project: p
                include: [more.yaml]
                work_pools:
                  - name: a
                    description: !file about.txt
            """,
            "more.yaml": "work_pools:\n  - name: b\n    description: ${WHO}\n",
            "about.txt": "'made by ${WHO:-nobody}'\n",
        }
    )
    result = load_project(root, {"WHO": "ops"})
    assert result.desired is not None, errors(result)
    assert {p.name: p.description for p in result.desired.pools} == {"a": "made by ops", "b": "ops"}


def test_a_config_without_env_references_loads_its_dollar_free_values_unchanged(write: Write) -> None:
    root = write({"wp.yaml": "project: p\nwork_pools:\n  - {name: a, description: 'costs 5 EUR {{ x }}'}\n"})
    result = load_project(root, {"x": "no"})
    assert result.desired is not None and result.desired.pools[0].description == "costs 5 EUR {{ x }}"


# --- positions=False: positions are recorded only when there is a diagnostic to place ----------------------

ANCHORED = """
project: p
work_pools:
  - &pool {name: a, type: process, concurrency_limit: 2}
  - <<: *pool
    name: b
deployments:
  - name: d
    entrypoint: flows/etl.py:etl
    work_pool: {name: a, job_variables: {env: {X: "1"}}}
"""

BROKEN = {
    "events": {
        "wp.yaml": "project: p\nwork_pools:\n  - name: a\n    type: process\n    concurency_limit: 3\n"
    },
    "anchors": {"wp.yaml": ANCHORED.replace("concurrency_limit: 2", "concurrency_limit: lots")},
    "include": {
        "wp.yaml": 'project: p\ninclude: ["more/*.yaml"]\nwork_pools: [{name: a, type: process}]\n',
        "more/d.yaml": "deployments:\n  - name: d\n    entrypoint: flows/etl.py:nope\n    work_pool: {name: a}\n",
    },
    "file tag": {"wp.yaml": "project: p\nwork_pools:\n  - name: a\n    base_job_template: !file nope.json\n"},
    "warning only": {
        "wp.yaml": 'project: p\ninclude: ["none/*.yaml"]\nwork_pools: [{name: a, type: process}]\n'
    },
}


@pytest.mark.parametrize("always_record", [0, reader.ALWAYS_RECORD_BYTES], ids=["bare", "small-recorded"])
def test_loading_without_positions_places_every_diagnostic_exactly_as_with_them(
    write: Write, monkeypatch: pytest.MonkeyPatch, always_record: int
) -> None:
    # with 0, even these small files are read without positions: the bare path and its reload are what is tested
    monkeypatch.setattr(reader, "ALWAYS_RECORD_BYTES", always_record)
    for case, files in BROKEN.items():
        for old in Path(write({}, with_flow=False)).rglob("*.yaml"):
            old.unlink()
        root = write(files)
        with_positions = load_project(root, {}).diagnostics
        assert with_positions, case
        assert all(d.line is not None for d in with_positions), case
        assert load_project(root, {}, positions=False).diagnostics == with_positions, case


def test_a_clean_project_loads_the_same_state_without_positions(write: Write) -> None:
    anchored_pools = "work_pools:\n  - &pool {name: a, type: process}\n  - <<: *pool\n    name: b\n"
    root = write(
        {
            "wp.yaml": SPEC_EXAMPLE.replace('"pools/*.yaml", ', '"pools.yaml", '),
            "pools.yaml": anchored_pools,
            "deployments/more.yaml": "deployments: [{name: o, entrypoint: flows/etl.py:etl, work_pool: {name: b}}]",
            "templates/k8s.json": json.dumps(K8S_TEMPLATE),
        }
    )
    full, fast = load_project(root, {}), load_project(root, {}, positions=False)
    assert full.diagnostics == fast.diagnostics == []
    assert fast.desired is not None and fast.desired == full.desired
    assert [p.name for p in fast.desired.pools] == ["a", "b", "k8s-prod"]
    assert [d.name for d in fast.desired.deployments] == ["nightly", "o"]
    assert fast.files == full.files


def _big_project(deployments: int) -> str:
    """A wp.yaml well over ALWAYS_RECORD_BYTES, so a load without positions reads it bare."""
    lines = ["project: p", "work_pools: [{name: a, type: process}]", "deployments:"]
    for i in range(deployments):
        lines += [f"  - name: d{i}", "    entrypoint: flows/etl.py:etl", "    work_pool: {name: a}"]
    text = "\n".join(lines) + "\n"
    assert len(text) > reader.ALWAYS_RECORD_BYTES
    return text


PREFECT_WITH_BUILD = """
name: p
build:
  - prefect_docker.deployments.steps.build_docker_image: {image_name: x}
deployments:
  - name: from-prefect
    entrypoint: flows/etl.py:etl
    work_pool: {name: a}
"""


def _count_loads(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Each full pass over the project, by whether it recorded positions."""
    passes: list[bool] = []
    real = load._load_project

    def counting(directory: str | Path, env: dict[str, str], *, record: bool) -> LoadedConfig:
        passes.append(record)
        return real(directory, env, record=record)

    monkeypatch.setattr(load, "_load_project", counting)
    return passes


def test_a_warning_in_a_small_prefect_yaml_is_placed_without_loading_a_large_project_twice(
    write: Write, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write({"wp.yaml": _big_project(2000), "prefect.yaml": PREFECT_WITH_BUILD})
    passes = _count_loads(monkeypatch)
    fast = load_project(root, {}, positions=False)
    assert passes == [False]  # one pass, wp.yaml read without positions
    assert [(d.severity, d.location, d.summary) for d in fast.diagnostics] == [
        (Severity.WARNING, "prefect.yaml:2:1", "prefect.yaml: 'build' is ignored")
    ]
    assert fast.diagnostics == load_project(root, {}).diagnostics
    assert fast.desired is not None and len(fast.desired.deployments) == 2001
    assert not fast.positioned  # its SourceMap cannot place what the pipeline finds later


def test_a_problem_in_a_large_file_read_without_positions_is_placed_by_a_second_pass(
    write: Write, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = _big_project(2000).replace("  - name: d1500\n", "  - name: d1500\n    tagz: [x]\n")
    root = write({"wp.yaml": text, "prefect.yaml": PREFECT_WITH_BUILD})
    passes = _count_loads(monkeypatch)
    fast = load_project(root, {}, positions=False)
    assert passes == [False, True]
    unknown = [d for d in fast.diagnostics if "tagz" in d.summary]
    assert len(unknown) == 1 and unknown[0].location == f"wp.yaml:{4 + 3 * 1500 + 1}:5"
    assert fast.diagnostics == load_project(root, {}).diagnostics


def test_a_missing_file_named_in_a_large_file_is_placed_at_its_tag(write: Write) -> None:
    pools = "work_pools:\n  - {name: a, type: process}\n  - {name: b, base_job_template: !file nope.json}\n"
    text = _big_project(2000).replace("work_pools: [{name: a, type: process}]\n", pools)
    fast = load_project(write({"wp.yaml": text}), {}, positions=False)
    missing = [d for d in fast.diagnostics if "nope.json" in d.summary]
    assert len(missing) == 1 and missing[0].location == "wp.yaml:4:34", missing
    assert fast.diagnostics == load_project(write({"wp.yaml": text}), {}).diagnostics


@pytest.mark.parametrize(
    ("text", "where", "tag"),
    [
        ("project: p\nwork_pools:\n  - name: a\n    description: !foo x\n", "wp.yaml:4:18", "!foo"),
        ("project: p\nwork_pools: !things\n  - name: a\n", "wp.yaml:2:13", "!things"),
        ("x: &a 1\nproject: p\nwork_pools:\n  - name: a\n    description: !foo x\n", "wp.yaml:5:18", "!foo"),
    ],
)
def test_an_unknown_yaml_tag_is_an_error_naming_the_supported_ones(
    write: Write, text: str, where: str, tag: str
) -> None:
    result = load_project(write({"wp.yaml": text}), {})
    found = [e for e in errors(result) if "unknown YAML tag" in e]
    assert len(found) == 1, errors(result)
    assert found[0].startswith(f"{where}: error: unknown YAML tag {tag}"), found
    assert "!file" in found[0] and "!!str" in found[0]


def test_standard_yaml_tags_still_work(write: Write) -> None:
    text = "project: p\nwork_pools:\n  - name: !!str a\n    concurrency_limit: !!int '3'\n"
    result = load_project(write({"wp.yaml": text}), {})
    assert errors(result) == []
    assert result.desired is not None and result.desired.pools[0].concurrency_limit == 3
