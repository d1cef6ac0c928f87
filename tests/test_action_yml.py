"""action.yml: the composite action of SPEC §7 is well-formed, safe against injection through its inputs, and its
`wp ci` step really works when run the way the runner runs it (bash, inputs through `env:`), against the fake
GitHub of tests/fake_github.py (it stands in for GitHub because no real GitHub is reachable here)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from actions_runner import RUNNER_VARIABLES, Step, github_step, pull_request_event
from fake_github import FakeGitHub, serve
from wp_cli import ISOLATED

from reconciler.cli.ci import OUTPUTS
from reconciler.gitops.pr_comment import parse_header

ROOT = Path(__file__).resolve().parent.parent
ACTION = ROOT / "action.yml"
SPEC_INPUTS = {"mode", "path", "api-url", "api-key", "prune", "comment", "github-token"}
SPEC_OUTPUTS = {"changes", "to-add", "to-change", "to-destroy", "plan-hash", "failure-reason"}
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
PROJECT = """\
project: shop
work_pools:
  - name: p
    type: process
    concurrency_limit: 4
"""


@pytest.fixture(scope="module")
def action() -> dict[str, Any]:
    loaded = yaml.safe_load(ACTION.read_text())
    assert isinstance(loaded, dict)
    return loaded


def _steps(action: dict[str, Any]) -> list[dict[str, Any]]:
    steps = action["runs"]["steps"]
    assert isinstance(steps, list) and steps
    return steps


def _wp_step(action: dict[str, Any]) -> dict[str, Any]:
    [step] = [s for s in _steps(action) if s.get("id") == "wp"]
    return step


def test_it_is_a_composite_action_with_the_spec_inputs_and_outputs(action: dict[str, Any]) -> None:
    assert action["name"] and action["description"]
    assert set(action["branding"]) == {"icon", "color"}
    assert action["runs"]["using"] == "composite"
    assert SPEC_INPUTS <= set(action["inputs"]) <= SPEC_INPUTS | {"auto-approve", "version"}
    assert set(action["outputs"]) == SPEC_OUTPUTS
    assert action["inputs"]["comment"]["default"] == "true"
    assert all(spec.get("description") for spec in (*action["inputs"].values(), *action["outputs"].values()))


def test_every_run_step_names_its_shell_and_takes_inputs_only_from_env(action: dict[str, Any]) -> None:
    used: set[str] = set()
    for step in _steps(action):
        if "run" not in step:
            continue
        assert step.get("shell") == "bash", step
        # An expression inside the script would be pasted into it before bash runs: a way to inject commands.
        assert "${{" not in step["run"], step["run"]
        for value in (step.get("env") or {}).values():
            for expression in EXPRESSION.findall(str(value)):
                if expression.startswith("inputs."):
                    used.add(expression.removeprefix("inputs."))
    assert used == set(action["inputs"]), "every input reaches the script, and only declared ones"


def test_every_output_maps_to_a_step_output_that_wp_ci_writes(action: dict[str, Any]) -> None:
    ids = {s.get("id") for s in _steps(action)}
    for name, spec in action["outputs"].items():
        match = re.fullmatch(r"\$\{\{ steps\.([\w-]+)\.outputs\.([\w-]+) \}\}", spec["value"])
        assert match, spec["value"]
        assert match.group(1) in ids
        assert match.group(2) == name
        assert match.group(2) in OUTPUTS


def test_installing_wp_from_the_actions_own_checkout(action: dict[str, Any]) -> None:
    [install] = [s for s in _steps(action) if "pip install" in s.get("run", "")]
    assert install["env"] == {"WP_ACTION_PATH": "${{ github.action_path }}"}
    assert '"$WP_ACTION_PATH"' in install["run"] and "--quiet" in install["run"]
    assert (ROOT / "pyproject.toml").is_file()  # what that pip install builds


# ------------------------------------------------------------------------------- running the step for real


def _evaluate(value: str, inputs: dict[str, str], github: dict[str, str]) -> str:
    """The runner's expression substitution, for the two contexts the action uses."""

    def one(match: re.Match[str]) -> str:
        context, _, name = match.group(1).partition(".")
        return {"inputs": inputs, "github": github}[context][name]

    return EXPRESSION.sub(one, value)


def _run_wp_step(
    action: dict[str, Any], step: Step, workspace: Path, home: Path, given: dict[str, str], token: str
) -> subprocess.CompletedProcess[str]:
    github_context = {"token": token, "action_path": str(ROOT)}
    inputs = {
        name: _evaluate(str(spec.get("default", "")), {}, github_context)
        for name, spec in action["inputs"].items()
    } | given
    wp_step = _wp_step(action)
    env = {k: v for k, v in os.environ.items() if k not in ISOLATED and k not in RUNNER_VARIABLES}
    env |= {k: v for k, v in step.env.items() if v is not None}
    env |= {k: _evaluate(str(v), inputs, github_context) for k, v in wp_step["env"].items()}
    env |= {"WP_HOME": str(home), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"}
    # How the runner runs a `shell: bash` step.
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", wp_step["run"]],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    (tmp_path / "ws" / "infra").mkdir(parents=True)
    (tmp_path / "ws" / "infra" / "wp.yaml").write_text(PROJECT)
    return tmp_path / "ws"


@pytest.fixture
def github() -> Any:
    with serve() as fake:
        fake.open_pull_request(3, "a" * 40)
        yield fake


def test_the_wp_step_plans_on_a_pull_request(
    action: dict[str, Any], workspace: Path, tmp_path: Path, github: FakeGitHub
) -> None:
    step = github_step(tmp_path, github, "pull_request", pull_request_event(3, "a" * 40), "a" * 40)
    done = _run_wp_step(action, step, workspace, tmp_path / "home", {"path": "infra"}, github.token)
    assert done.returncode == 0, done.stderr
    outputs = step.outputs()
    assert set(outputs) == SPEC_OUTPUTS
    assert outputs["changes"] == "true" and outputs["to-add"] == "1"
    [body] = github.bodies(3)
    header = parse_header(body)
    assert header is not None and (header.path, header.plan_hash) == ("infra", outputs["plan-hash"])


def test_inputs_are_data_never_code(
    action: dict[str, Any], workspace: Path, tmp_path: Path, github: FakeGitHub
) -> None:
    step = github_step(tmp_path, github, "pull_request", pull_request_event(3, "a" * 40), "a" * 40)
    evil = 'infra"; touch pwned; echo "'
    done = _run_wp_step(
        action, step, workspace, tmp_path / "home", {"path": evil, "comment": "false"}, github.token
    )
    assert done.returncode == 1
    assert not (workspace / "pwned").exists()
    assert "no wp.yaml in" in done.stderr and "touch pwned" in done.stderr  # the whole input was one path
    assert step.outputs()["failure-reason"] == "invalid-config"
    refused = _run_wp_step(
        action, step, workspace, tmp_path / "home", {"path": "infra", "prune": "maybe"}, github.token
    )
    assert refused.returncode == 1
    assert "the prune input must be true, false or empty" in refused.stdout


def test_the_api_url_input_chooses_the_store(
    action: dict[str, Any], workspace: Path, tmp_path: Path, github: FakeGitHub
) -> None:
    step = github_step(tmp_path, github, "pull_request", pull_request_event(3, "a" * 40), "a" * 40)
    given = {"path": "infra", "api-url": "http://127.0.0.1:9", "comment": "false"}  # nothing listens there
    done = _run_wp_step(action, step, workspace, tmp_path / "home", given, github.token)
    assert done.returncode == 1
    assert "127.0.0.1:9" in done.stderr
    assert step.outputs()["failure-reason"] == "error"
