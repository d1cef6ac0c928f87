"""Untrusted configuration: a config comes from a pull request and `wp ci --mode plan` reads it unreviewed.

Alias bombs, self-referencing aliases, deep nesting, paths outside the project, files that never end and
regular expressions that backtrack forever must each end in one diagnostic at file:line, quickly and in
little memory; never in an internal error, a hang, or a file's content from outside the project.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.config.files import MAX_FILE_BYTES
from reconciler.config.load import LoadedConfig, load_project
from reconciler.config.yaml_values import MAX_ALIAS_VALUES, MAX_DEPTH
from reconciler.diagnostics import Severity

Write = Callable[..., Path]

FLOW = "from prefect import flow\n\n\n@flow\ndef run() -> None:\n    pass\n"


def errors(result: LoadedConfig) -> list[str]:
    return [d.format() for d in result.diagnostics if d.severity is Severity.ERROR]


def project(root: Path, files: dict[str, str]) -> Path:
    for name, text in {"flows/job.py": FLOW, **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def load_quickly(directory: Path, seconds: float = 10.0) -> LoadedConfig:
    started = time.monotonic()
    result = load_project(directory, {})
    assert time.monotonic() - started < seconds, "reading the config took too long"
    return result


def bomb(levels: int, width: int = 9) -> str:
    """A billion-laughs document: each level's anchor is a list of `width` aliases of the level below."""
    lines = ["project: x", "l0: &l0 [" + ", ".join(['"lol"'] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]")
    lines.append(f"work_pools: [*l{levels - 1}]")
    return "\n".join(lines) + "\n"


# --- 1. aliases -------------------------------------------------------------------------------------------


def test_an_alias_bomb_in_wp_yaml_is_refused_at_the_alias_that_passes_the_bound(tmp_path: Path) -> None:
    result = load_quickly(project(tmp_path, {"wp.yaml": bomb(10)}))
    found = errors(result)
    assert len(found) == 1, found
    # 9 + 81 + 729 + 6561 + 59049 values fit, the first alias of level 6 (line 7) passes 100,000
    assert found[0].startswith("wp.yaml:7:"), found
    assert f"{MAX_ALIAS_VALUES:,}" in found[0] and "alias" in found[0]


def test_an_alias_bomb_in_prefect_yaml_parameters_is_refused(tmp_path: Path) -> None:
    bombed = bomb(10).replace("project: x\n", "").replace("work_pools: [*l9]", "")
    text = "definitions:\n" + "".join("  " + ln + "\n" for ln in bombed.splitlines() if ln)
    text += "deployments:\n  - name: d\n    entrypoint: flows/job.py:run\n    parameters: {p: *l9}\n"
    result = load_quickly(project(tmp_path, {"wp.yaml": "project: x\n", "prefect.yaml": text}))
    found = errors(result)
    assert len(found) == 1 and found[0].startswith("prefect.yaml:"), found
    assert "alias" in found[0]


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("project: x\nwork_pools: &a [*a]\n", 2),
        ("project: x\nwork_pools:\n  - &p\n    name: p\n    type: process\n    extra: {again: *p}\n", 6),
    ],
    ids=["list", "mapping"],
)
def test_a_self_referencing_alias_is_refused_at_the_alias(tmp_path: Path, text: str, line: int) -> None:
    found = errors(load_quickly(project(tmp_path, {"wp.yaml": text})))
    assert len(found) == 1, found
    assert found[0].startswith(f"wp.yaml:{line}:") and "inside the value it names" in found[0], found


def test_an_alias_that_nests_too_deep_is_refused(tmp_path: Path) -> None:
    deep = "[" * 80 + "1" + "]" * 80
    text = f"project: x\nd: &d {deep}\nwork_pools: {'[' * 20}*d{']' * 20}\n"
    found = errors(load_quickly(project(tmp_path, {"wp.yaml": text})))
    assert found, "a value nested deeper than the bound after expanding aliases was accepted"
    assert found[0].startswith("wp.yaml:3:") and f"{MAX_DEPTH}" in found[0], found


def test_anchors_within_the_bounds_still_work(tmp_path: Path) -> None:
    dep = "  - {{name: d{}, entrypoint: flows/job.py:run, work_pool: {{name: p, job_variables: {}}}}}\n"
    text = "project: x\nwork_pools:\n  - {name: p, type: process}\ndeployments:\n"
    text += dep.format(0, "&vars {env: {A: '1'}}") + "".join(dep.format(i, "*vars") for i in range(1, 50))
    result = load_quickly(project(tmp_path, {"wp.yaml": text}))
    assert errors(result) == []
    assert result.desired is not None
    assert all(d.job_variables == {"env": {"A": "1"}} for d in result.desired.deployments)


# --- nesting without aliases --------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [800, 3000])
def test_nesting_deeper_than_the_bound_is_one_diagnostic(tmp_path: Path, depth: int) -> None:
    text = "project: x\nwork_pools: " + "[" * depth + "]" * depth + "\n"
    found = errors(load_quickly(project(tmp_path, {"wp.yaml": text})))
    assert len(found) == 1, found
    assert found[0].startswith("wp.yaml:2:") and f"{MAX_DEPTH}" in found[0], found


def test_block_nesting_deeper_than_the_bound_is_one_diagnostic(tmp_path: Path) -> None:
    lines = ["project: x", "work_pools:"] + [" " * i + f"k{i}:" for i in range(2, 2 + MAX_DEPTH + 5)]
    found = errors(load_quickly(project(tmp_path, {"wp.yaml": "\n".join(lines) + " 1\n"})))
    assert len(found) == 1 and f"{MAX_DEPTH}" in found[0], found


# --- 2. paths outside the project ---------------------------------------------------------------------------

SECRET = "AKIA-outside-secret-0123456789"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory beside the project holding a secret and a flow: nothing in the project may reach them."""
    out = tmp_path / "outside"
    out.mkdir()
    (out / "creds.txt").write_text(f"{SECRET}\n")
    (out / "pools.yaml").write_text(f"work_pools:\n  - {{name: {SECRET.lower()}, type: process}}\n")
    (out / "evil.py").write_text(FLOW)
    return out


def assert_refused(result: LoadedConfig, file_line: str, words: str) -> None:
    found = errors(result)
    assert found, "a path outside the project was accepted"
    assert any(e.startswith(file_line) and words in e for e in found), found
    text = "\n".join(d.format() for d in result.diagnostics)
    assert SECRET not in text and SECRET.lower() not in text, "the outside file's content was read"


@pytest.mark.parametrize("pattern", ["../outside/*.yaml", "{outside}/*.yaml", "../*/pools.yaml"])
def test_an_include_outside_the_project_is_refused(tmp_path: Path, outside: Path, pattern: str) -> None:
    include = pattern.format(outside=outside)
    root = project(tmp_path / "proj", {"wp.yaml": f"project: x\ninclude: ['{include}']\n"})
    assert_refused(load_quickly(root), "wp.yaml:2:", "outside the project directory")


def test_an_include_through_a_symlink_leaving_the_project_is_refused(tmp_path: Path, outside: Path) -> None:
    root = project(tmp_path / "proj", {"wp.yaml": "project: x\ninclude: ['pools/*.yaml']\n"})
    (root / "pools").mkdir()
    (root / "pools" / "linked.yaml").symlink_to(outside / "pools.yaml")
    assert_refused(load_quickly(root), "wp.yaml:2:", "outside the project directory")


@pytest.mark.parametrize("target", ["../outside/creds.txt", "{outside}/creds.txt", "link/creds.txt"])
def test_a_file_tag_outside_the_project_is_refused(tmp_path: Path, outside: Path, target: str) -> None:
    text = f"project: x\nwork_pools:\n  - name: p\n    type: process\n    description: !file {target}\n"
    root = project(tmp_path / "proj", {"wp.yaml": text.format(outside=outside)})
    (root / "link").symlink_to(outside)
    assert_refused(load_quickly(root), "wp.yaml:5:", "outside the project directory")


@pytest.mark.parametrize(
    "entrypoint", ["../outside/evil.py:run", "{outside}/evil.py:run", "link/evil.py:run"]
)
def test_an_entrypoint_outside_the_project_is_refused(tmp_path: Path, outside: Path, entrypoint: str) -> None:
    text = (
        "project: x\nwork_pools: [{name: p, type: process}]\n"
        f"deployments:\n  - name: d\n    entrypoint: {entrypoint.format(outside=outside)}\n"
        "    work_pool: {name: p}\n"
    )
    root = project(tmp_path / "proj", {"wp.yaml": text})
    (root / "link").symlink_to(outside)
    assert_refused(load_quickly(root), "wp.yaml:5:", "outside the project directory")


def test_paths_inside_the_project_through_symlinks_still_work(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        {
            "wp.yaml": "project: x\ninclude: ['more/*.yaml']\n",
            "real/pools.yaml": "work_pools:\n  - {name: p, type: process, description: !file note.txt}\n",
            "real/note.txt": "hello\n",
        },
    )
    (root / "more").symlink_to(root / "real")
    result = load_quickly(root)
    assert errors(result) == []
    assert result.desired is not None and result.desired.pools[0].description == "hello"


# --- 3. files that never end, patterns that never finish -----------------------------------------------------


def test_a_file_tag_naming_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    root = project(tmp_path, {"wp.yaml": "project: x\nwork_pools:\n  - {name: p, description: !file pipe}\n"})
    os.mkfifo(root / "pipe")
    found = errors(load_quickly(root, seconds=5))
    assert any(e.startswith("wp.yaml:3:") and "not a regular file" in e for e in found), found


def test_a_file_tag_naming_dev_zero_is_refused(tmp_path: Path) -> None:
    root = project(tmp_path, {"wp.yaml": "project: x\nwork_pools:\n  - {name: p, description: !file zero}\n"})
    (root / "zero").symlink_to("/dev/zero")  # inside the project by name, a device once resolved
    found = errors(load_quickly(root, seconds=5))
    assert any(e.startswith("wp.yaml:3:") for e in found), found


def test_a_file_larger_than_the_bound_is_refused_unread(tmp_path: Path) -> None:
    root = project(
        tmp_path, {"wp.yaml": "project: x\nwork_pools:\n  - {name: p, description: !file big.txt}\n"}
    )
    with open(root / "big.txt", "wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)  # sparse: costs no disk
    found = errors(load_quickly(root, seconds=5))
    assert any(e.startswith("wp.yaml:3:") and "larger than" in e for e in found), found


def test_a_catastrophically_backtracking_pattern_does_not_hang_validation(tmp_path: Path) -> None:
    text = (
        "project: x\nwork_pools:\n  - name: p\n    type: process\n    base_job_template:\n"
        "      job_configuration: {command: '{{ command }}'}\n"
        "      variables:\n        type: object\n        properties:\n"
        "          command: {type: string, pattern: '^(a|aa)+$', default: '" + "a" * 60 + "!'}\n"
    )
    started = time.monotonic()
    found = errors(load_project(project(tmp_path, {"wp.yaml": text}), {}))
    assert time.monotonic() - started < 10
    assert any("^(a|aa)+$" in e for e in found), found


# --- 5. one set of bounds, checked at validate time, identical on every store -------------------------------

POOL_LINE = "project: x\nwork_pools:\n  - name: p\n    type: process\n"


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ("    concurrency_limit: 2147483648\n", "concurrency_limit"),
        ("    concurrency_limit: 9223372036854775808\n", "concurrency_limit"),
        ("    queues: [{name: q, priority: 2147483648}]\n", "priority"),
        ("    queues: [{name: q, priority: true}]\n", "priority"),
        ("    queues: [{name: q, concurrency_limit: 99999999999999999999}]\n", "concurrency_limit"),
    ],
)
def test_a_number_the_store_cannot_hold_is_refused_at_validate(
    tmp_path: Path, extra: str, field: str
) -> None:
    found = errors(load_quickly(project(tmp_path, {"wp.yaml": POOL_LINE + extra})))
    assert len(found) == 1 and found[0].startswith("wp.yaml:5:") and field in found[0], found


def test_a_name_longer_than_the_store_holds_is_refused_at_validate(tmp_path: Path) -> None:
    found = errors(
        load_quickly(project(tmp_path, {"wp.yaml": f"project: x\nwork_pools:\n  - name: {'n' * 300}\n"}))
    )
    assert len(found) == 1 and found[0].startswith("wp.yaml:3:") and "200" in found[0], found


@pytest.mark.parametrize("interval", ["1e308", ".inf", ".nan", "99999999999999"])
def test_an_interval_that_is_not_a_finite_number_of_seconds_is_refused(tmp_path: Path, interval: str) -> None:
    text = (
        POOL_LINE + "deployments:\n  - name: d\n    entrypoint: flows/job.py:run\n    work_pool: {name: p}\n"
        f"    schedules:\n      - interval: {interval}\n"
    )
    found = errors(load_quickly(project(tmp_path, {"wp.yaml": text})))
    assert len(found) == 1 and found[0].startswith("wp.yaml:10:") and "interval" in found[0], found
