"""The committed JSON Schema of wp.yaml must match the models it is generated from."""

from __future__ import annotations

import json

import jsonschema

from reconciler.config.schema import SCHEMA_FILE, schema_text


def test_committed_schema_is_current() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == schema_text(), (
        "schemas/wp.schema.json is stale: run `python -m reconciler.config.schema`"
    )


def test_schema_accepts_the_spec_example_and_refuses_unknown_fields() -> None:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    good = {
        "project": "p",
        "work_pools": [{"name": "a", "type": "kubernetes", "queues": [{"name": "q", "priority": 1}]}],
        "deployments": [
            {"name": "d", "entrypoint": "f.py:f", "work_pool": {"name": "a", "job_variables": {}}}
        ],
    }
    assert list(validator.iter_errors(good)) == []
    bad = {"project": "p", "work_pools": [{"name": "a", "concurency_limit": 1}]}
    assert [e.validator for e in validator.iter_errors(bad)] == ["additionalProperties"]


def test_schema_takes_intervals_as_seconds_or_duration_text_and_refuses_non_positive_ones() -> None:
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))

    def doc(interval: object) -> dict[str, object]:
        schedule = {"interval": interval}
        return {
            "project": "p",
            "deployments": [{"name": "d", "entrypoint": "f.py:f", "schedules": [schedule]}],
        }

    for fine in (600, 0.5, "PT10M", "1:30:00"):
        assert list(validator.iter_errors(doc(fine))) == [], fine
    for wrong in (0, -5, "", True):
        assert list(validator.iter_errors(doc(wrong))), wrong
