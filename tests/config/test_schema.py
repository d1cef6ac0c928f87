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
