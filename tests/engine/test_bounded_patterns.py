"""`unevaluatedProperties` keeps its meaning under the bounded-time validator, and a catastrophic
patternProperties key reached through it is refused quickly instead of hanging (issue 10, gap of item 3)."""

from __future__ import annotations

import time
from typing import Any

from reconciler.engine.patterns import BoundedValidator

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string"}},
    "allOf": [{"patternProperties": {"^x-": {"type": "string"}}}],
    "if": {"required": ["kind"]},
    "then": {"properties": {"kind": {"const": "a"}}},
    "unevaluatedProperties": False,
}


def _errors(schema: dict[str, Any], value: Any) -> list[str]:
    return [e.message for e in BoundedValidator(schema).iter_errors(value)]


def test_keys_evaluated_by_properties_patterns_and_applicators_are_allowed() -> None:
    assert _errors(SCHEMA, {"name": "n", "x-one": "1", "kind": "a"}) == []


def test_a_key_nothing_evaluates_is_refused() -> None:
    [message] = _errors(SCHEMA, {"name": "n", "other": 1})
    assert "unevaluated" in message and "'other'" in message


def test_a_key_invalid_under_an_unevaluated_schema_is_refused() -> None:
    schema = {"type": "object", "unevaluatedProperties": {"type": "integer"}}
    assert _errors(schema, {"a": 1}) == []
    [message] = _errors(schema, {"a": "one"})
    assert "'a'" in message


def test_a_backtracking_pattern_behind_unevaluated_properties_is_refused_in_bounded_time() -> None:
    schema = {
        "type": "object",
        "allOf": [{}],
        "patternProperties": {"^(a|aa)+$": {"type": "string"}},
        "unevaluatedProperties": False,
    }
    started = time.monotonic()
    messages = _errors(schema, {"a" * 60 + "!": "x"})
    assert time.monotonic() - started < 5
    assert any("backtracks catastrophically" in m for m in messages), messages
