"""Pull steps against real git repositories made in a temp dir."""

from __future__ import annotations

import io
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.runtime.pull_steps import PullStepError, resolve, run_pull_steps, step_name


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@e"}  # fmt: skip
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def origin(tmp_path: Path) -> tuple[Path, str]:
    """`flows-repo` with `main` (two commits) and branch `feature`; returns it and main's first commit."""
    repo = tmp_path / "flows-repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "version.txt").write_text("one\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "one")
    first = git(repo, "rev-parse", "HEAD")
    (repo / "version.txt").write_text("two\n")
    git(repo, "commit", "-q", "-am", "two")
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "version.txt").write_text("feature\n")
    git(repo, "commit", "-q", "-am", "feature")
    git(repo, "checkout", "-q", "main")
    return repo, first


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    work = tmp_path / "work"
    work.mkdir()
    before = os.getcwd()
    os.chdir(work)  # steps change the process's directory, as they do in the flow-run process
    yield work
    os.chdir(before)


def run(steps: list[dict[str, Any]]) -> dict[str, Any]:
    return run_pull_steps(steps, env=dict(os.environ), out=io.StringIO())


def test_git_clone_at_a_branch_then_set_working_directory_by_reference(
    origin: tuple[Path, str], workdir: Path
) -> None:
    repo, _ = origin
    outputs = run(
        [
            {
                "prefect.deployments.steps.git_clone": {
                    "id": "clone",
                    "repository": str(repo),
                    "branch": "feature",
                }
            },
            {"prefect.deployments.steps.set_working_directory": {"directory": "{{ clone.directory }}"}},
        ]
    )
    assert outputs["directory"] == "flows-repo-feature"
    assert Path.cwd() == workdir / "flows-repo-feature"
    assert Path("version.txt").read_text() == "feature\n"


def test_git_clone_at_a_commit(origin: tuple[Path, str], workdir: Path) -> None:
    repo, first = origin
    outputs = run(
        [{"prefect.projects.steps.git_clone_project": {"repository": str(repo), "commit_sha": first}}]
    )
    assert (workdir / str(outputs["directory"]) / "version.txt").read_text() == "one\n"


def test_git_clone_of_a_missing_repository_names_the_step_and_the_error(workdir: Path) -> None:
    with pytest.raises(
        PullStepError, match=r"pull step 1 \(git_clone\) failed: `git clone .*exited with 128"
    ):
        run([{"git_clone": {"repository": str(workdir / "missing")}}])


def test_failing_shell_script_fails_with_its_output(workdir: Path) -> None:
    steps = [{"run_shell_script": {"script": "echo first\nls /definitely/not/here"}}]
    with pytest.raises(PullStepError, match=r"pull step 1 \(run_shell_script\) failed.*definitely/not/here"):
        run(steps)


def test_shell_script_output_feeds_later_steps(workdir: Path) -> None:
    (workdir / "sub").mkdir()
    outputs = run(
        [
            {"run_shell_script": {"id": "where", "script": "echo sub"}},
            {"set_working_directory": {"directory": "{{ where.stdout }}"}},
        ]
    )
    assert Path.cwd() == workdir / "sub" and outputs["directory"] == "sub"


def test_pip_install_requirements_with_a_missing_file_is_a_clear_error(workdir: Path) -> None:
    with pytest.raises(PullStepError, match=r"requirements file 'requirements.txt' does not exist"):
        run([{"prefect.deployments.steps.pip_install_requirements": {}}])


def test_unknown_step_lists_the_steps_wp_runs(workdir: Path) -> None:
    with pytest.raises(PullStepError, match=r"unknown step 'pull_from_s3'; wp runs git_clone, "):
        run([{"pull_from_s3": {}}])


def test_step_names_and_references() -> None:
    assert step_name("prefect.deployments.steps.git_clone") == "git_clone"
    assert step_name("prefect.projects.steps.git_clone_project") == "git_clone"
    assert step_name("run_shell_script") == "run_shell_script"
    outputs = {"a": {"n": 3, "s": "x"}}
    assert resolve(
        {"k": "{{ a.n }}", "t": "v-{{ a.s }}-{{ $HOME_X }}", "u": "{{ b.z }}"}, outputs, {"HOME_X": "h"}
    ) == {
        "k": 3,
        "t": "v-x-h",
        "u": "{{ b.z }}",
    }


def test_a_working_directory_missing_on_this_machine_says_how_to_bring_the_code(workdir: Path) -> None:
    with pytest.raises(PullStepError) as caught:
        run([{"prefect.deployments.steps.set_working_directory": {"directory": "/home/someone/project"}}])
    message = str(caught.value)
    assert (
        "pull step 1 (set_working_directory) failed: directory '/home/someone/project' does not exist"
        in message
    )
    assert "the code must be there on the machine that runs the flow" in message
    assert "git_clone" in message
