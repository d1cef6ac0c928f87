"""validate_job_variables reuses one validator per pool schema; a schema changed in place is never answered
from the cache, and equal schemas give equal answers."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from reconciler.engine.template_variables import _surely_valid, validate_job_variables
from reconciler.model import BaseJobTemplate


def _template(max_length: int) -> BaseJobTemplate:
    return BaseJobTemplate(
        variables={
            "type": "object",
            "required": ["image"],
            "properties": {"image": {"type": "string", "maxLength": max_length}},
        }
    )


def test_a_schema_changed_in_place_is_checked_against_its_new_content() -> None:
    template = _template(3)
    assert [p.message for p in validate_job_variables(template, {"image": "abcd"})] == [
        "job variable 'image' 'abcd' is too long"
    ]
    template.variables["properties"]["image"]["maxLength"] = 10  # frozen model, mutable dict: still honoured
    assert validate_job_variables(template, {"image": "abcd"}) == []


def test_equal_schemas_in_different_objects_give_the_same_problems() -> None:
    for _ in range(3):
        problems = validate_job_variables(_template(3), {"image": 12345})
        assert [(p.path, p.message) for p in problems] == [
            (("image",), "job variable 'image' 12345 is not of type 'string'")
        ]


def test_required_is_enforced_only_for_runs_with_the_same_schema_object() -> None:
    template = _template(3)
    assert validate_job_variables(template, {}) == []
    assert [p.message for p in validate_job_variables(template, {}, for_run=True)] == [
        "'image' is a required property"
    ]
    assert validate_job_variables(template, {}) == []


# --- the fast "certainly valid" check must never hide an error jsonschema reports ---------------------------


@pytest.mark.parametrize(
    ("schema", "instance", "expected"),
    [
        ({"type": "object", "properties": {"n": {"type": "integer"}}}, {"n": 1}, True),
        ({"type": "object", "properties": {"n": {"type": "integer"}}}, {"n": True}, False),
        (
            {"type": "object", "properties": {"n": {"type": "integer"}}},
            {"n": 2.0},
            False,
        ),  # jsonschema decides
        ({"anyOf": [{"type": "string"}, {"type": "null"}]}, None, True),
        ({"type": "object", "additionalProperties": {"type": "string"}}, {"A": 1}, False),
        ({"type": "object", "properties": {"n": {"minimum": 3}}}, {"n": 5}, False),  # unknown keyword
        ({"type": "object", "required": ["a"]}, {}, False),
        ({"type": "object", "properties": {"p": {"$ref": "#/$defs/x"}}}, {"p": 1}, False),
    ],
)
def test_surely_valid_answers_true_only_when_jsonschema_agrees(
    schema: dict[str, Any], instance: Any, expected: bool
) -> None:
    assert _surely_valid(schema, instance) is expected
    if expected:
        assert jsonschema.Draft202012Validator(schema).is_valid(instance)
