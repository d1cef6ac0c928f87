"""The JSON Schema of the plan file (`wp plan --out`), generated from engine.plan's enums and JSON form.

Owns `schemas/plan.schema.json`: `python -m reconciler.engine.plan_schema` rewrites it, and a test fails
when the committed file is stale. The schema is built by a pure function; only `main` writes the file.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reconciler.engine.plan import FORMAT_VERSION, Action, Reason
from reconciler.model import Kind

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "plan.schema.json"

_STRINGS: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
_ATTRIBUTES: dict[str, Any] = {"type": ["object", "null"], "description": "attributes, secrets masked"}


def _strict(properties: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "required": sorted(properties),
        "additionalProperties": False,
        "properties": properties,
    }


def _change() -> dict[str, Any]:
    return _strict(
        {
            "address": {"type": "string", "pattern": r"^(work_pool|work_queue|deployment|schedule)\..+$"},
            "kind": {"enum": [k.value for k in Kind]},
            "name": {"type": "string"},
            "actions": {"enum": [a.json_actions for a in Action]},
            "action_reason": {"enum": [*(r.value for r in Reason), None]},
            "before": _ATTRIBUTES,
            "after": _ATTRIBUTES,
            "owner_before": {
                "type": ["string", "null"],
                "description": "the project that managed it; null = by hand",
            },
            "attribute_changes": {"type": "array", "items": {"$ref": "#/$defs/attribute_change"}},
            "notes": {"type": "array", "items": {"$ref": "#/$defs/note"}},
        },
        "one object the plan creates, updates, deletes, replaces or leaves alone",
    )


def plan_schema() -> dict[str, Any]:
    """The schema of `plan_to_json` output (JSON Schema draft 2020-12)."""
    counts = _strict({k: {"type": "integer", "minimum": 0} for k in ("add", "change", "destroy")}, "counts")
    schema = _strict(
        {
            "format_version": {"type": "string", "description": f"this wp writes {FORMAT_VERSION}"},
            "project": {"type": "string"},
            "prune": {"type": "boolean"},
            "destroy": {"type": "boolean"},
            "targets": _STRINGS,
            "source_dir": {"type": ["string", "null"]},
            "resource_changes": {"type": "array", "items": {"$ref": "#/$defs/change"}},
            "resource_drift": {"type": "array", "items": {"$ref": "#/$defs/change"}},
            "fingerprints": {"type": "object", "additionalProperties": {"type": "string"}},
            "secret_patterns": _STRINGS,
            "protected": _STRINGS,
            "protection_changes": _STRINGS,
            "warnings": _STRINGS,
            "summary": counts,
            "plan_hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        },
        "a wp plan file (wp plan --out FILE)",
    )
    schema["$defs"] = {
        "change": _change(),
        "attribute_change": _strict(
            {
                "path": {"type": "string", "description": "dotted, e.g. job_variables.env.FOO"},
                "before": {},
                "after": {},
                "forces_replacement": {"type": "boolean"},
            },
            "one changed attribute",
        ),
        "note": _strict(
            {"kind": {"type": "string"}, "message": {"type": "string"}, "data": {"type": "object"}},
            "an impact note",
        ),
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://github.com/wp-gitops/wp/schemas/plan.schema.json",
        "title": "wp plan",
        **schema,
    }


def schema_text() -> str:
    return json.dumps(plan_schema(), indent=2, sort_keys=True) + "\n"


def main(argv: Sequence[str] = ()) -> int:
    """Write the schema to SCHEMA_PATH (or the path given)."""
    target = Path(argv[0]) if argv else SCHEMA_PATH
    target.write_text(schema_text(), encoding="utf-8")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
