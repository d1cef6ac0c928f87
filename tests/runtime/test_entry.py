"""`python -m reconciler.runtime.entry`: what runs inside the infrastructure, as a real child process."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from reconciler.engine.plan import Action, Change, Plan
from reconciler.model import Deployment, FlowRun, WorkPool, attributes
from reconciler.store.base import ApplyRecord
from reconciler.store.sql import SqlStore

CODE = textwrap.dedent(
    """
    import asyncio, sys

    def add(a, b=1):
        print(f"sum={a + b}")

    async def later(x):
        await asyncio.sleep(0)
        print(f"async {x}")

    def heavy_modules(names):
        print("heavy:", sorted(m for m in names.split(",") if m in sys.modules))

    class Wrapper:
        def __init__(self, fn):
            self.fn = fn

    def _plain():
        print("wrapped ran")

    decorated = Wrapper(_plain)

    class Ticket:
        def __await__(self):
            yield from asyncio.sleep(0).__await__()
            print("awaited a ticket")

    def ticket():
        return Ticket()
    """
)
# A flow that imports nothing itself: what is loaded when it runs is the flow-run process's own doing.
LEAN = textwrap.dedent(
    """
    import sys

    def loaded(names):
        print("loaded:", sorted(n for n in names.split(",") if n in sys.modules))
    """
)
# What a flow-run process must never load: the store's, the CLI's and the server's libraries, the local Prefect
# API's http.server (Prefect flows only), hashlib (it loads OpenSSL: megabytes).
HEAVY = ("sqlalchemy", "pydantic", "typer", "fastapi", "http.server", "hashlib")
# Dropped from every flow-run process (RSS: 15.5 -> 12.9 MB a child): typing, dataclasses, inspect and traceback
# by entry itself, importlib.abc (with importlib.resources and tempfile) by prefect_lean, the pull steps'
# subprocess and shlex unless the deployment has pull steps.
DROPPED = (
    "typing", "dataclasses", "inspect", "traceback", "importlib.abc", "importlib.resources", "tempfile",
    "subprocess", "shlex", "reconciler.runtime.pull_steps", "asyncio",
)  # fmt: skip


def run_entry(
    cwd: Path,
    entrypoint: str,
    parameters: dict[str, Any] | None = None,
    pull_steps: list[dict[str, Any]] | None = None,
) -> tuple[int, str, list[dict[str, Any]]]:
    """Run the entry with a report pipe, as the process executor does; return (code, output, reports)."""
    read, write = os.pipe()
    env = {
        **os.environ,
        "WP_FLOW_RUN_ID": "run-1",
        "WP_ENTRYPOINT": entrypoint,
        "WP_PARAMETERS": json.dumps(parameters or {}),
        "WP_REPORT_FD": str(write),
    }
    if pull_steps:
        env["WP_PULL_STEPS"] = json.dumps(pull_steps)
    proc = subprocess.run(
        [sys.executable, "-m", "reconciler.runtime.entry"],
        cwd=cwd, env=env, pass_fds=(write,), capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    os.close(write)
    with os.fdopen(read) as pipe:
        reports = [json.loads(line) for line in pipe.read().splitlines()]
    return proc.returncode, proc.stdout + proc.stderr, reports


@pytest.fixture
def code_dir(tmp_path: Path) -> Path:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "code.py").write_text(CODE)
    (tmp_path / "flows" / "lean.py").write_text(LEAN)
    return tmp_path


def test_plain_function_runs_with_parameters_and_reports_running_then_completed(code_dir: Path) -> None:
    code, output, reports = run_entry(code_dir, "flows/code.py:add", {"a": 2, "b": 3})
    assert code == 0
    assert "sum=5" in output
    assert [r["state"] for r in reports] == ["RUNNING", "COMPLETED"]


def test_async_functions_and_decorated_flows_run(code_dir: Path) -> None:
    assert "async 7" in run_entry(code_dir, "flows/code.py:later", {"x": 7})[1]
    assert "wrapped ran" in run_entry(code_dir, "flows/code.py:decorated")[1]


@functools.cache
def loaded_at_startup() -> frozenset[str]:
    """The modules this interpreter has before any code of ours runs: a site-packages `.pth` file may import some
    (an interpreter whose certifi is patched at start-up has typing, tempfile and importlib.resources)."""
    script = "import sys; print(','.join(sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=30
    )
    return frozenset(out.stdout.strip().split(","))


def test_the_flow_process_imports_no_store_or_cli_libraries(code_dir: Path) -> None:
    # nor the local Prefect API's http.server (Prefect flows only) nor hashlib, which loads OpenSSL (megabytes);
    # what the interpreter loads before any code of ours runs (a .pth that imports hashlib) is not ours to judge
    heavy = [name for name in HEAVY if name not in loaded_at_startup()]
    assert "sqlalchemy" in heavy and "http.server" in heavy  # never loaded at start-up
    code, output, _ = run_entry(code_dir, "flows/code.py:heavy_modules", {"names": ",".join(heavy)})
    assert code == 0, output
    assert "heavy: []" in output


def test_the_flow_process_loads_only_what_a_plain_function_needs(code_dir: Path) -> None:
    ours = [name for name in DROPPED if name not in loaded_at_startup()]
    assert "reconciler.runtime.pull_steps" in ours and "asyncio" in ours  # never loaded at start-up
    code, output, _ = run_entry(code_dir, "flows/lean.py:loaded", {"names": ",".join(ours)})
    assert code == 0, output
    assert "loaded: []" in output


def test_an_object_with_await_is_awaited_like_a_coroutine(code_dir: Path) -> None:
    code, output, _ = run_entry(code_dir, "flows/code.py:ticket")
    assert code == 0, output
    assert "awaited a ticket" in output


def test_a_failing_pull_step_fails_the_run_naming_the_step(code_dir: Path) -> None:
    steps = [{"run_shell_script": {"script": "ls definitely/not/here"}}]
    code, output, reports = run_entry(code_dir, "flows/lean.py:loaded", {"names": ""}, pull_steps=steps)
    assert code == 1
    assert reports[-1]["state"] == "FAILED"
    assert "pull step 1 (run_shell_script) failed" in reports[-1]["message"]
    assert "Traceback" not in output


def test_missing_file_fails_with_a_clear_message(code_dir: Path) -> None:
    code, output, reports = run_entry(code_dir, "flows/nope.py:add")
    assert code == 1
    assert reports[-1]["state"] == "FAILED"
    assert "entrypoint file 'flows/nope.py' not found" in reports[-1]["message"]
    assert "Traceback" not in output


def test_missing_function_names_the_functions_defined(code_dir: Path) -> None:
    _, _, reports = run_entry(code_dir, "flows/code.py:nope")
    assert reports[-1]["state"] == "FAILED"
    assert "has no function 'nope'" in reports[-1]["message"] and "add" in reports[-1]["message"]


def test_bad_parameters_fail_the_run_with_the_error(code_dir: Path) -> None:
    _, output, reports = run_entry(code_dir, "flows/code.py:add", {"c": 1})
    assert reports[-1]["state"] == "FAILED"
    assert reports[-1]["message"].startswith("TypeError:")
    assert "Traceback (most recent call last)" in output


def test_without_a_pipe_it_reports_and_ships_logs_to_the_store(code_dir: Path, tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'wp.db'}")
    store.create_work_pool(WorkPool(name="local"))
    deployment = Deployment(flow="add", name="d", entrypoint="flows/code.py:add", work_pool="local")
    plan = Plan(project="t", changes=(Change(deployment.key, Action.CREATE, None, attributes(deployment)),))
    store.apply(plan, ApplyRecord(project="t", actor="t", summary={"add": 1, "change": 0, "destroy": 0}))
    from datetime import UTC, datetime

    run = FlowRun(id="r-1", name="r", flow="add", deployment="add/d", work_pool="local", work_queue="default",
                  state="PENDING", expected_start_time=datetime.now(UTC))  # fmt: skip
    store.create_flow_run(run)
    env = {**os.environ, "WP_HOME": str(tmp_path), "WP_FLOW_RUN_ID": "r-1"}
    env |= {"WP_ENTRYPOINT": "flows/code.py:add", "WP_PARAMETERS": '{"a": 40, "b": 2}'}
    env.pop("WP_REPORT_FD", None)
    proc = subprocess.run(
        [sys.executable, "-m", "reconciler.runtime.entry"], cwd=code_dir, env=env, timeout=60
    )
    assert proc.returncode == 0
    assert store.get_flow_run("r-1").state == "COMPLETED"
    assert "sum=42" in [line.message for line in store.read_logs("r-1")]
    store.close()
