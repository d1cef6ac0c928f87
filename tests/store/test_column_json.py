"""A JSON column's text (store/column_json.py) reads back as the value the standard library's text reads back
as, whatever the value: NaN and infinities stay themselves (orjson alone would store null), integers beyond 64
bits, keys that are not strings, lone surrogates; what the standard library refuses is still refused. And a
store written through it gives the values back."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from reconciler.engine.apply import apply_plan
from reconciler.pipeline import plan_project
from reconciler.store.column_json import Finite, column_json
from reconciler.store.sql import SqlStore

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.sampled_from([math.inf, -math.inf]),
    st.text(max_size=8),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=16,
)


@settings(max_examples=400, deadline=None)
@given(VALUES)
@example({"a": None, "b": math.inf})
@example({"big": 2**64, "neg": -(2**63) - 1})
@example({1: "not a string key", "n": None})
@example(["\ud800"])
@example({"t": (1, None)})
def test_reads_back_as_the_standard_librarys_text_does(value: Any) -> None:
    assert json.loads(column_json(value)) == json.loads(json.dumps(value))


def test_nan_is_kept() -> None:
    back = json.loads(column_json({"x": math.nan, "y": None}))
    assert math.isnan(back["x"]) and back["y"] is None


def test_what_the_standard_library_refuses_is_still_refused() -> None:
    with pytest.raises(TypeError):
        column_json({"when": datetime(2026, 1, 1, tzinfo=UTC)})


def test_an_apply_stores_what_the_config_says(tmp_path: Path) -> None:
    """Through the real pipeline: integers beyond 64 bits, odd characters, nulls."""
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "f.py").write_text("def f(**kw):\n    return 0\n")
    (tmp_path / "wp.yaml").write_text(
        "project: cj\n"
        "work_pools: [{name: p, type: process}]\n"
        "deployments:\n"
        "  - name: d\n"
        "    entrypoint: flows/f.py:f\n"
        "    work_pool: {name: p}\n"
        '    parameters: {big: 123456789012345678901234567890, text: "\u00e9\\u2028", none: null}\n'
        "    schedules:\n"
        "      - {slug: s, cron: '0 * * * *', parameters: {nan: .nan, inf: .inf, big: 36893488147419103232}}\n"
    )
    store = SqlStore(f"sqlite:///{tmp_path}/wp.db")
    outcome = plan_project(tmp_path, store, env={}, now=datetime.now(UTC))
    assert outcome.plan is not None, [d.format() for d in outcome.diagnostics]
    apply_plan(store, outcome.plan, actor="test")
    got = SqlStore(f"sqlite:///{tmp_path}/wp.db").get_deployment("f", "d")
    assert got.parameters == {"big": 123456789012345678901234567890, "text": "\u00e9\u2028", "none": None}
    # the plan carries each object's JSON form, in which pydantic already writes NaN and infinity as null
    assert got.schedules[0].parameters == {"nan": None, "inf": None, "big": 36893488147419103232}


def test_a_finite_mapping_is_written_as_its_dict() -> None:
    value = {"a": None, "b": [1, 2.5, {"c": None}], "d": "é"}
    assert json.loads(column_json(Finite(value))) == value
