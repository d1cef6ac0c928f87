"""What `prefect_lean` saves a cold Prefect run, and that flows see no difference: with a real Prefect (the venv of
tests/prefect_env.sh), in fresh interpreters as a container run would be."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.runtime.prefect_venv import prefect_python, runner_env

pytestmark = pytest.mark.xdist_group("prefect-flows")

FLOW = textwrap.dedent(
    """
    from prefect import flow

    @flow
    def trivial(x: int = 1, tags: list = ["a"]) -> int:
        return x + 1

    @flow
    def uses_a_block() -> str:
        from prefect.blocks.system import Secret
        return type(Secret(value="s3cret").get()).__name__

    class Point:
        def __init__(self, x):
            self.x = x

    @flow
    def odd_parameter(p: Point) -> int:
        return p.x
    """
)

PROBE = textwrap.dedent(
    """
    import io, json, sys
    sys.path.insert(0, ".")
    from reconciler.runtime import entry, prefect_flows
    run = entry.load_entrypoint(sys.argv[1], __import__("pathlib").Path("."))
    deferred_after_import = type(sys.modules["prefect.blocks.notifications"]).__name__
    import flows_under_test as m
    from prefect.flows import Flow
    parameters = json.loads(sys.argv[2])
    if sys.argv[1].endswith("odd_parameter"):
        parameters = {"p": m.Point(3)}
    result = prefect_flows.run_flow(
        getattr(m, sys.argv[1].split(":")[1]), parameters, {"WP_FLOW_RUN_NAME": "lean"}, out=io.StringIO()
    )
    print(json.dumps({
        "result": result,
        "notifications": deferred_after_import,
        "fastapi": "fastapi" in sys.modules,
        "serialized": Flow.serialize_parameters(getattr(m, sys.argv[1].split(":")[1]), parameters),
    }, default=repr))
    """
)


def probe(tmp_path: Path, entrypoint: str, parameters: dict[str, object]) -> dict[str, object]:
    (tmp_path / "flows_under_test.py").write_text(FLOW)
    env = {**os.environ, **runner_env(), "PREFECT_HOME": str(tmp_path / "prefect-home")}
    done = subprocess.run(
        [str(prefect_python()), "-c", PROBE, entrypoint, json.dumps(parameters)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_a_cold_run_skips_the_block_modules_and_fastapi_for_json_parameters(tmp_path: Path) -> None:
    seen = probe(tmp_path, "flows_under_test.py:trivial", {"x": 4, "tags": ["b", "c"]})
    assert seen["result"] == 5
    assert seen["notifications"] == "_Deferred"  # imported by prefect.main, its code not run
    assert seen["fastapi"] is False
    assert seen["serialized"] == {"x": 4, "tags": ["b", "c"]}  # what Prefect's own encoder gives


def test_a_block_from_a_deferred_module_works_when_a_flow_uses_it(tmp_path: Path) -> None:
    assert probe(tmp_path, "flows_under_test.py:uses_a_block", {})["result"] == "str"


def test_parameters_that_are_not_plain_json_go_through_prefects_encoder(tmp_path: Path) -> None:
    seen = probe(tmp_path, "flows_under_test.py:odd_parameter", {})
    assert seen["result"] == 3
    assert seen["fastapi"] is True
    assert seen["serialized"] == {"p": {"x": 3}}  # FastAPI's jsonable_encoder reads the object's fields
