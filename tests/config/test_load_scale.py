"""load_project's fast paths (scalar typing, the resolver memo, dropping list nodes early) give what PyYAML's
SafeLoader gives, and positions stay right in long lists, with and without anchors."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from reconciler.config.load import Location, load_project

Write = Callable[..., Path]

SCALARS = [
    "plain", "'quoted'", '"123"', "!!str 12", "12", "0", "-7", "+5", "1_000", "0755", "0x1F", "0b101",
    "1.5", "-.inf", ".nan", "1e3", "true", "True", "yes", "no", "off", "on", "~", "null", "", "2024-01-02",
    "2024-01-02T03:04:05Z", "<<x", "'&x'", "n", "y", "Europe/Berlin", "0 2 * * *", "!!float 3", "!!int '42'",
]  # fmt: skip


def _expected(text: str) -> object:
    value = yaml.safe_load(f"v: {text}")["v"]
    return value.isoformat() if isinstance(value, dt.date | dt.datetime) else value


def _project(write: Write, parameters: str, deployments: int = 1) -> Path:
    lines = ["project: p", "work_pools:", "  - {name: pool, type: process}", "deployments:"]
    for d in range(deployments):
        lines += [
            f"  - name: d{d}",
            "    entrypoint: flows/etl.py:etl",
            "    work_pool: {name: pool}",
            "    parameters:",
            *[f"      {line}" for line in parameters.splitlines()],
        ]
    return write({"wp.yaml": "\n".join(lines) + "\n"})


@pytest.mark.parametrize("text", SCALARS)
def test_scalars_get_the_type_safe_load_gives_them(write: Write, text: str) -> None:
    root = _project(write, f"v: {text}")
    result = load_project(root, {})
    assert result.desired is not None, [d.format() for d in result.diagnostics]
    got = result.desired.deployments[0].parameters["v"]
    want = _expected(text)
    if isinstance(want, float) and want != want:  # NaN
        assert isinstance(got, float) and got != got
    else:
        assert got == want and type(got) is type(want)


def test_loading_twice_gives_the_same_values(write: Write) -> None:
    root = _project(write, "a: 2024-01-02\nb: 0755\nc: yes", deployments=3)
    first, second = load_project(root, {}), load_project(root, {})
    assert first.desired == second.desired
    assert first.desired is not None
    assert first.desired.deployments[0].parameters == {"a": "2024-01-02", "b": 493, "c": True}


@pytest.mark.parametrize("anchored", [False, True])
def test_positions_in_a_long_list_point_at_the_right_line(write: Write, anchored: bool) -> None:
    # Without anchors the loader drops each list item's nodes once converted; with them it keeps them.
    lines = ["project: p", "work_pools:", "  - name: pool", "    type: process"]
    if anchored:
        lines += ["    description: &d shared"]
    lines.append("deployments:")
    for d in range(300):
        lines += [f"  - name: d{d}", "    entrypoint: flows/etl.py:etl", "    work_pool: {name: pool}"]
        if anchored:
            lines += ["    description: *d"]
    lines += ["  - name: broken", "    entrypoint: flows/etl.py:etl", "    work_pool: {name: pool}"]
    lines += ["    concurrency_limit: many"]
    text = "\n".join(lines) + "\n"
    root = write({"wp.yaml": text})
    result = load_project(root, {})
    [problem] = [d for d in result.diagnostics if "concurrency_limit" in d.format()]
    assert (problem.file, problem.line) == (
        "wp.yaml",
        text.splitlines().index("    concurrency_limit: many") + 1,
    )
    ok = load_project(write({"wp.yaml": text.replace("concurrency_limit: many", "concurrency_limit: 2")}), {})
    assert ok.desired is not None and len(ok.desired.deployments) == 301
    assert ok.sources.locate("deployment.etl-flow/d299") == Location(
        "wp.yaml", lines.index("  - name: d299") + 1, 5
    )
    if anchored:
        assert {d.description for d in ok.desired.deployments} == {"shared", None}


def test_merge_keys_still_merge_with_explicit_keys_winning(write: Write) -> None:
    root = write(
        {
            "wp.yaml": """
            project: p
            work_pools:
              - &base {name: pool, type: process, concurrency_limit: 3}
              - <<: *base
                name: other
            """
        }
    )
    result = load_project(root, {})
    assert result.desired is not None, [d.format() for d in result.diagnostics]
    assert [(p.name, p.concurrency_limit) for p in result.desired.pools] == [("other", 3), ("pool", 3)]
