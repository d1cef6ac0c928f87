"""The plan hash an apply records (`reviewed_hash`) is the plan file's own `plan_hash`, for any values: with
secrets, Secret references, `name`/`value` env entries, escaped keys and custom patterns, masked or not."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from reconciler.engine.plan import Action, Change, Plan, plan_to_json, reviewed_hash
from reconciler.model import Key, Kind

# Keys that masking acts on, next to plain ones and ones JSON has to escape.
KEYS = st.sampled_from(
    [
        "image",
        "env",
        "name",
        "value",
        "API_TOKEN",
        "password",
        "secret",
        "secretName",
        "secretKeyRef",
        "imagePullSecrets",
        "key",
        "optional",
        'quo"te',
        "back\\slash",
        "DB_PASSWORD",
        "plain",
        "",
    ]
)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(max_size=8), st.sampled_from(["DB_PASSWORD", "x"])
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=4)),
    max_leaves=12,
)
ATTRS = st.dictionaries(KEYS, VALUES, max_size=5)


def _plan(
    afters: list[dict[str, Any]], befores: list[dict[str, Any] | None], patterns: tuple[str, ...]
) -> Plan:
    changes = tuple(
        Change(
            Key(Kind.DEPLOYMENT, f"flow/d{i}"),
            Action.CREATE if before is None else Action.UPDATE,
            before,
            after,
        )
        for i, (after, before) in enumerate(zip(afters, befores, strict=False))
    )
    return Plan(project="p", changes=changes, secret_patterns=patterns)


@settings(max_examples=300, deadline=None)
@example(  # a Kubernetes-style env entry: its `value` is masked because of its `name`
    afters=[{"env": [{"name": "DB_PASSWORD", "value": "clear"}, {"name": "PLAIN", "value": "shown"}]}],
    befores=[None, None, None, None],
    patterns=("*PASSWORD*",),
)
@example(  # under a reference to a Secret, its name and key are shown although they look secret
    afters=[
        {"secretKeyRef": {"name": "API_TOKEN", "key": "password"}, "volume": {"secret": {"secretName": "s"}}}
    ],
    befores=[{"secretKeyRef": {"name": "x", "key": "TOKEN"}}, None, None, None],
    patterns=("*TOKEN*", "*PASSWORD*"),
)
@given(
    afters=st.lists(ATTRS, min_size=0, max_size=4),
    befores=st.lists(st.one_of(st.none(), ATTRS), min_size=4, max_size=4),
    patterns=st.sampled_from(
        [("*TOKEN*", "*PASSWORD*", "*SECRET*"), ("*IMAGE*",), ("*T?KEN*", "PASS*"), ("[AB]*",), ("*",), ()]
    ),
)
def test_recorded_hash_is_the_plan_files_hash(
    afters: list[dict[str, Any]], befores: list[dict[str, Any] | None], patterns: tuple[str, ...]
) -> None:
    plan = _plan(afters, befores, patterns)
    assert reviewed_hash(plan) == plan_to_json(plan)["plan_hash"]


def test_a_secret_changes_the_hash_only_through_its_mask() -> None:
    """Two plans that differ only in a secret's clear value show the same reviewed plan, so the same hash;
    a plain value's change is a different plan."""
    secret = [{"env": {"API_TOKEN": "one", "image": "a"}}]
    other_secret = [{"env": {"API_TOKEN": "two", "image": "a"}}]
    other_plain = [{"env": {"API_TOKEN": "one", "image": "b"}}]
    patterns = ("*TOKEN*",)
    same = reviewed_hash(_plan(secret, [None], patterns))
    assert same == reviewed_hash(_plan(other_secret, [None], patterns))
    assert same != reviewed_hash(_plan(other_plain, [None], patterns))
    assert "one" not in json.dumps(plan_to_json(_plan(secret, [None], patterns))["resource_changes"])


def test_protection_changes_are_in_the_hash() -> None:
    plan = _plan([{"image": "a"}], [None], ())
    protected = Plan(
        project="p",
        changes=plan.changes,
        protected=("deployment.flow/d0",),
        protection_changes=("deployment.flow/d0",),
    )
    assert reviewed_hash(protected) == plan_to_json(protected)["plan_hash"]
    assert reviewed_hash(protected) != reviewed_hash(plan)
    assert (
        reviewed_hash(Plan(project="p", changes=()))
        == plan_to_json(Plan(project="p", changes=()))["plan_hash"]
    )


def test_a_plan_made_from_a_config_with_nan_and_infinity_hashes_as_its_file(tmp_path: Any) -> None:
    """A validated plan's values are JSON-mode dumps (NaN and infinity already null), which the hash relies on."""
    from datetime import UTC, datetime

    from reconciler.pipeline import plan_project
    from reconciler.store.sql import SqlStore

    (tmp_path / "f.py").write_text("def f(**kw):\n    return 0\n")
    (tmp_path / "wp.yaml").write_text(
        "project: h\nwork_pools: [{name: p}]\ndeployments:\n"
        "  - name: d\n    entrypoint: f.py:f\n    work_pool: {name: p}\n"
        "    parameters: {nan: .nan, inf: -.inf, tiny: 1.0e-7, none: null}\n"
        "    schedules: [{slug: s, interval: 60, parameters: {x: .inf}}]\n"
    )
    outcome = plan_project(tmp_path, SqlStore(f"sqlite:///{tmp_path}/wp.db"), env={}, now=datetime.now(UTC))
    assert outcome.plan is not None and outcome.plan.validated
    assert reviewed_hash(outcome.plan) == plan_to_json(outcome.plan)["plan_hash"]
