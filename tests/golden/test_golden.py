"""Golden plans: each case in cases/<name>/case.py builds a DesiredState and a Snapshot; its plan must
render to exactly plan.txt, plan.md and plan.json (or its refusal to exactly error.txt).

Golden diagnostics: a case that is a config directory (cases/<name>/wp.yaml) is an invalid project; both
`wp validate` and `wp plan` on it, against an empty store, must exit 1 and print exactly diagnostics.txt on
stderr (no colour, one diagnostic, never a traceback) and nothing on stdout.

`UPDATE_GOLDEN=1 pytest tests/golden` rewrites the expected files after a deliberate change."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import jsonschema
import pytest
from wp_cli import run_wp

from reconciler.engine.diff import check_stale, make_plan
from reconciler.engine.plan import reviewed_hash
from reconciler.engine.plan_schema import plan_schema
from reconciler.engine.render import render_json, render_markdown, render_text
from reconciler.errors import PlanError

CASES = Path(__file__).parent / "cases"
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
UNSET_VARIABLE = "WP_GOLDEN_UNSET_VARIABLE"  # cases use it as the `${VAR}` that is missing


def _load(name: str) -> ModuleType:
    if str(CASES.parent) not in sys.path:  # case files import `livestate` from this folder
        sys.path.insert(0, str(CASES.parent))
    spec = importlib.util.spec_from_file_location(f"golden_case_{name}", CASES / name / "case.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _outputs(case: ModuleType) -> dict[str, str]:
    try:
        plan = make_plan(case.DESIRED, case.SNAPSHOT, now=NOW, **getattr(case, "OPTIONS", {}))
    except PlanError as exc:
        return {"error.txt": exc.message + "\n"}
    if hasattr(case, "after_plan"):
        return {"error.txt": "\n".join(check_stale(plan, case.after_plan(case.SNAPSHOT))) + "\n"}
    jsonschema.validate(json.loads(render_json(plan)), plan_schema())
    # what an apply records in the history is the plan file's own hash, computed without the file
    assert reviewed_hash(plan) == json.loads(render_json(plan))["plan_hash"]
    return {
        "plan.txt": render_text(plan, color=False),
        "plan.md": render_markdown(plan),
        "plan.json": render_json(plan) + "\n",
    }


@pytest.mark.parametrize("name", sorted(p.name for p in CASES.iterdir() if (p / "case.py").exists()))
def test_golden(name: str) -> None:
    outputs = _outputs(_load(name))
    for filename, actual in outputs.items():
        expected_file = CASES / name / filename
        if UPDATE:
            expected_file.write_text(actual, encoding="utf-8")
        assert expected_file.exists(), f"{expected_file} is missing; run UPDATE_GOLDEN=1 pytest tests/golden"
        assert actual == expected_file.read_text(encoding="utf-8"), (
            f"{name}/{filename} differs from the golden file"
        )
    stale = {"plan.txt", "plan.md", "plan.json", "error.txt"} - set(outputs)
    for filename in stale:
        assert not (CASES / name / filename).exists(), (
            f"{name}/{filename} is not produced by this case any more"
        )


@pytest.mark.parametrize("command", ["validate", "plan"])
@pytest.mark.parametrize("name", sorted(p.name for p in CASES.iterdir() if (p / "wp.yaml").exists()))
def test_golden_diagnostics(name: str, command: str, tmp_path: Path) -> None:
    result = run_wp(command, CASES / name, env={"WP_HOME": str(tmp_path), UNSET_VARIABLE: None})
    expected_file = CASES / name / "diagnostics.txt"
    if UPDATE and command == "validate":
        expected_file.write_text(result.stderr, encoding="utf-8")
    assert (result.code, result.stdout) == (1, ""), result
    assert result.stderr.count(": error: ") == 1, f"{name}: expected exactly one diagnostic\n{result.stderr}"
    assert result.stderr == expected_file.read_text(encoding="utf-8"), (
        f"{name}: stderr of wp {command} differs"
    )
