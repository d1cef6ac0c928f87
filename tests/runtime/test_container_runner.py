"""The container runner without a container: the bootstrap run by real interpreters (the oldest and newest
supported ones this machine has), the environment a container gets, and the parser of its output."""

from __future__ import annotations

import glob
import json
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reconciler.model import Deployment, FlowRun
from reconciler.runtime.entry import STATE_MARKER
from reconciler.runtime.executors.base import Event, Job, Output, StateReport
from reconciler.runtime.executors.container import (
    CREDENTIAL_ENV,
    ENV_RUNNER_CODE,
    OLDEST_PYTHON,
    StreamParser,
    runner_command,
    runner_env,
)

FLOWS = textwrap.dedent(
    """
    import sys

    def hello(name="world"):
        print("hello " + name + " on " + ".".join(map(str, sys.version_info[:2])))
        print("unfinished", end="")
        print("to stderr", file=sys.stderr)

    def boom():
        raise ValueError("the flow broke")

    def spy():
        import os
        print(sorted(k for k in os.environ if k.startswith("WP_")))
        print("reconciler" in sys.modules and sys.modules["reconciler"].__spec__.origin)
    """
)


def _pythons() -> list[str]:
    """The oldest supported and the newest interpreter found (pyenv's, Debian's), else the running one."""
    found: dict[tuple[int, int], str] = {}
    for path in [*glob.glob("/root/.pyenv/versions/3.*/bin/python3"), "/usr/bin/python3", sys.executable]:
        try:
            out = subprocess.run(
                [path, "-c", "import sys; print(sys.version_info[0], sys.version_info[1])"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
        except (OSError, subprocess.CalledProcessError):
            continue
        version = (int(out[0]), int(out[1]))
        if version >= OLDEST_PYTHON:
            found.setdefault(version, path)
    chosen = sorted(found)
    return sorted({found[chosen[0]], found[chosen[-1]]})


def _job(entrypoint: str, configuration: dict[str, object] | None = None, **params: object) -> Job:
    run = FlowRun(
        id="run-1",
        name="brave-otter",
        flow="f",
        deployment="f/d",
        work_pool="docker-pool",
        work_queue="default",
        state="PENDING",
        expected_start_time=datetime(2030, 1, 1, tzinfo=UTC),
        parameters=dict(params),
    )
    deployment = Deployment(flow="f", name="d", entrypoint=entrypoint, work_pool="docker-pool")
    worker_env = {"WP_API_KEY": "secret-key", "WP_API_URL": "http://127.0.0.1:1", "HOME": "/root"}
    return Job(run, deployment, configuration or {}, worker_env, "w1")


def _run(python: str, job: Job, cwd: Path) -> tuple[int, list[Event]]:
    done = subprocess.run(runner_command(python), env=runner_env(job), cwd=cwd, capture_output=True)
    parser = StreamParser()
    events = parser.feed("stdout", done.stdout) + parser.feed("stderr", done.stderr) + parser.close()
    return done.returncode, events


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    (tmp_path / "flows.py").write_text(FLOWS)
    return tmp_path


@pytest.mark.parametrize("python", _pythons())
def test_the_bootstrap_runs_a_flow_without_wp_installed(python: str, flows: Path) -> None:
    code, events = _run(python, _job("flows.py:hello", name="box"), flows)
    version = subprocess.run([python, "-V"], capture_output=True, text=True).stdout.split()[1]
    major_minor = ".".join(version.split(".")[:2])
    assert code == 0
    assert events == [
        StateReport("RUNNING"),
        Output("stdout", f"hello box on {major_minor}"),
        Output("stdout", "unfinished"),  # a line the flow left open is still shipped whole
        StateReport("COMPLETED"),
        Output("stderr", "to stderr"),
    ]


@pytest.mark.parametrize("python", _pythons())
def test_a_failing_flow_reports_failed_with_its_error(python: str, flows: Path) -> None:
    code, events = _run(python, _job("flows.py:boom"), flows)
    assert code == 1
    reports = [e for e in events if isinstance(e, StateReport)]
    assert reports == [StateReport("RUNNING"), StateReport("FAILED", "ValueError: the flow broke")]
    assert any("Traceback" in e.text for e in events if isinstance(e, Output) and e.stream == "stderr")


def test_the_container_gets_no_credentials_and_not_the_workers_environment(flows: Path) -> None:
    configuration = {"env": {"GREETING": "hi", "WP_API_KEY": "{{ leaked }}", "WP_DATABASE_URL": "sqlite://"}}
    env = runner_env(_job("flows.py:spy", configuration))
    assert env["GREETING"] == "hi"
    assert not set(CREDENTIAL_ENV) & set(env)
    assert "HOME" not in env  # the worker's own environment stays with the worker
    code, events = _run(sys.executable, _job("flows.py:spy", configuration), flows)
    assert code == 0
    seen = [e.text for e in events if isinstance(e, Output)]
    # the flow sees its spec but neither credentials nor the runner's code (popped before the flow runs)
    names = json.loads(seen[0].replace("'", '"'))
    assert "WP_FLOW_RUN_ID" in names and ENV_RUNNER_CODE not in names
    assert not set(CREDENTIAL_ENV) & set(names)
    assert seen[1] == "wp-runner"  # the runner's modules came from the bootstrap, not an installed wp


def test_the_parser_joins_lines_split_across_chunks_and_dates_them_by_their_start() -> None:
    first = datetime(2030, 1, 1, 0, 0, 1, tzinfo=UTC)
    second = datetime(2030, 1, 1, 0, 0, 2, tzinfo=UTC)
    parser = StreamParser()
    report = (STATE_MARKER + json.dumps({"state": "RUNNING", "message": None})).encode()
    assert parser.feed("stdout", b"hel", first) == []
    assert parser.feed("stdout", b"lo\n" + report[:5], second) == [Output("stdout", "hello", first)]
    assert parser.feed("stdout", report[5:] + b"\nnext\npart", second) == [
        StateReport("RUNNING"),
        Output("stdout", "next", second),
    ]
    assert parser.close() == [Output("stdout", "part", second)]


def test_the_parser_finds_a_mark_mid_line_only_on_stdout_and_flags_garbage() -> None:
    parser = StreamParser()
    line = f"no newline{STATE_MARKER}" + json.dumps({"state": "FAILED", "message": "bad"}) + "\n"
    assert parser.feed("stdout", line.encode()) == [
        Output("stdout", "no newline"),
        StateReport("FAILED", "bad"),
    ]
    assert parser.feed("stderr", line.encode()) == [Output("stderr", line.rstrip("\n"))]
    [garbage] = parser.feed("stdout", f"{STATE_MARKER}not json\n".encode())
    assert isinstance(garbage, Output) and "unreadable report" in garbage.text
    assert parser.feed("stdout", "é\r\n".encode()) == [Output("stdout", "é")]


def test_the_runner_carries_every_wp_module_its_modules_import() -> None:
    """A container has no wp installed: a module the runner's code imports at load time but does not carry
    would fail every run in every container with an ImportError."""
    import ast
    import importlib.util

    from reconciler.runtime.executors.container import RUNNER_MODULES

    for name in RUNNER_MODULES:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin is not None, name
        tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
        imported: set[str] = set()
        for node in tree.body:  # load time only: imports inside functions serve other paths (direct reports)
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("reconciler"):
                imported |= {f"{node.module}.{a.name}" for a in node.names} | {node.module}
            elif isinstance(node, ast.Import):
                imported |= {a.name for a in node.names if a.name.startswith("reconciler")}
        modules = {m for m in imported if importlib.util.find_spec(m.rpartition(".")[0] or m) is not None}
        wp_modules = {m for m in modules if m.count(".") >= 2 and _is_module(m)}
        missing = sorted(wp_modules - set(RUNNER_MODULES))
        assert not missing, f"{name} imports {missing}, which the runner does not carry"


def _is_module(name: str) -> bool:
    import importlib.util

    try:
        spec = importlib.util.find_spec(name)
    except ModuleNotFoundError:
        return False
    return spec is not None and spec.origin not in (None, "namespace") and not name.endswith("__init__")
