"""validate_job_variables reuses one validator per pool schema; a schema changed in place is never answered
from the cache, and equal schemas give equal answers."""

from __future__ import annotations

from reconciler.engine.template import validate_job_variables
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
