"""Pull steps: what runs inside the infrastructure before the entrypoint (SPEC §2, §5).

Owns the step names wp accepts (`prefect.deployments.steps.<step>`, `prefect.projects.steps.<step>` or plain
`<step>`), the four steps (`git_clone`, `set_working_directory`, `pip_install_requirements`,
`run_shell_script`), their outputs and `{{ step-id.field }}` / `{{ $VAR }}` references between steps. It
changes the process's working directory on purpose: it runs in the flow-run process, never in the worker.

Imports only the standard library, so the flow-run process starts fast. Must never touch the store.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

STEP_PREFIXES = ("prefect.deployments.steps.", "prefect.projects.steps.")
ALIASES = {"git_clone_project": "git_clone"}
PLACEHOLDER = re.compile(r"\{\{\s*([^{}\s]+)\s*\}\}")
# keys Prefect allows on every step that are not arguments of the step function
STEP_META = ("id", "requires")
# set by the container runner (entry.ENV_REPORT_STREAM = "stdout"): the steps run inside a container
IN_CONTAINER_ENV = "WP_REPORT_STREAM"


class PullStepError(Exception):
    """A pull step failed; the message names the step and carries its output."""


def step_name(raw: str) -> str:
    """`prefect.deployments.steps.git_clone` → `git_clone` (also the older `prefect.projects.steps.` form)."""
    for prefix in STEP_PREFIXES:
        if raw.startswith(prefix):
            raw = raw[len(prefix) :]
            break
    return ALIASES.get(raw, raw)


def resolve(value: Any, outputs: Mapping[str, Mapping[str, Any]], env: Mapping[str, str]) -> Any:
    """Fill `{{ step-id.field }}` from earlier steps' outputs and `{{ $VAR }}` from `env`.

    A value that is exactly one placeholder keeps the referenced value's type; unknown references are left as
    written (as Prefect does), so a later error names them.
    """
    if isinstance(value, Mapping):
        return {k: resolve(v, outputs, env) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, outputs, env) for v in value]
    if not isinstance(value, str):
        return value
    whole = PLACEHOLDER.fullmatch(value.strip())
    if whole:
        found, result = _lookup(whole.group(1), outputs, env)
        return result if found else value

    def text(match: re.Match[str]) -> str:
        found, result = _lookup(match.group(1), outputs, env)
        return str(result) if found else match.group(0)

    return PLACEHOLDER.sub(text, value)


def _lookup(ref: str, outputs: Mapping[str, Mapping[str, Any]], env: Mapping[str, str]) -> tuple[bool, Any]:
    if ref.startswith("$"):
        return (ref[1:] in env, env.get(ref[1:]))
    step_id, _, field = ref.partition(".")
    if step_id in outputs and field in outputs[step_id]:
        return True, outputs[step_id][field]
    return False, None


def run_pull_steps(
    steps: Sequence[Mapping[str, Any]], *, env: Mapping[str, str], out: TextIO
) -> dict[str, Any]:
    """Run `steps` in order in the current process; return the merged outputs of all steps.

    Raises PullStepError naming the failing step (1-based) and its output.
    """
    by_id: dict[str, Mapping[str, Any]] = {}
    merged: dict[str, Any] = {}
    for index, step in enumerate(steps, start=1):
        name, args = _parse_step(step, index)
        args = resolve(args, by_id, env)
        step_id = args.get("id")
        call_args = {k: v for k, v in args.items() if k not in STEP_META}
        function = STEPS[name]
        print(f"wp: pull step {index}: {name}", file=out, flush=True)
        try:
            result = function(process_env=env, out=out, **call_args)
        except PullStepError as exc:
            raise PullStepError(f"pull step {index} ({name}) failed: {exc}") from None
        except TypeError as exc:
            raise PullStepError(f"pull step {index} ({name}) has bad arguments: {exc}") from None
        if step_id:
            by_id[str(step_id)] = result
        merged.update(result)
    return merged


def _parse_step(step: Mapping[str, Any], index: int) -> tuple[str, dict[str, Any]]:
    if not isinstance(step, Mapping) or len(step) != 1:
        raise PullStepError(
            f"pull step {index} must be a mapping with one key, the step name, e.g. "
            "{'prefect.deployments.steps.git_clone': {'repository': ...}}"
        )
    raw, args = next(iter(step.items()))
    name = step_name(str(raw))
    if name not in STEPS:
        allowed = ", ".join(sorted(STEPS))
        raise PullStepError(f"pull step {index}: unknown step {raw!r}; wp runs {allowed}")
    if args is None:
        args = {}
    if not isinstance(args, Mapping):
        raise PullStepError(f"pull step {index} ({name}): its arguments must be a mapping")
    return name, dict(args)


# ---------------------------------------------------------------------------------------------- the steps


def set_working_directory(*, directory: str, process_env: Mapping[str, str], out: TextIO) -> dict[str, Any]:
    path = Path(directory).expanduser()
    if not path.is_dir() and process_env.get(IN_CONTAINER_ENV) == "stdout":
        raise PullStepError(
            f"directory {directory!r} does not exist in this container; a prefect.yaml deployment without pull "
            "steps records the project directory of the machine that ran `wp plan`, which a container does not "
            "have: build the code into the image and point this step (or the deployment's pull steps) at where "
            "it is in the image, or fetch it with a git_clone pull step"
        )
    if not path.is_dir():
        raise PullStepError(
            f"directory {directory!r} does not exist (relative to {os.getcwd()}); the code must be there on the "
            "machine that runs the flow (a deployment without pull steps records the directory `wp plan` ran "
            "in), or give the deployment pull steps that fetch it, e.g. git_clone"
        )
    os.chdir(path)
    return {"directory": str(directory)}


def git_clone(
    *,
    repository: str,
    branch: str | None = None,
    commit_sha: str | None = None,
    include_submodules: bool = False,
    access_token: str | None = None,
    credentials: Any = None,
    directories: Sequence[str] | None = None,
    clone_directory_name: str | None = None,
    process_env: Mapping[str, str],
    out: TextIO,
) -> dict[str, Any]:
    """Clone `repository` into ./<repo name> at `branch` or `commit_sha`; an existing clone is updated.

    Returns `{"directory": <the clone's path relative to the current directory>}`.
    """
    if branch and commit_sha:
        raise PullStepError("give either branch or commit_sha, not both")
    token = access_token or _token_of(credentials)
    url = _with_token(repository, token) if token else repository
    directory = clone_directory_name or _repo_dir_name(repository, branch)
    secrets = (token,) if token else ()
    git = _git_runner(process_env, secrets)
    if not Path(directory, ".git").exists():
        depth = ["--depth", "1"] if not commit_sha and "://" in repository else []
        branch_args = ["--branch", branch] if branch else []
        sparse = ["--sparse"] if directories else []
        git(["clone", *depth, *branch_args, *sparse, url, directory], None)
    else:
        git(["fetch", "origin", *([branch] if branch else [])], directory)
        git(
            ["checkout", "-q", "-B", branch, "FETCH_HEAD"]
            if branch
            else ["merge", "--ff-only", "FETCH_HEAD"],
            directory,
        )
    if directories:
        git(["sparse-checkout", "set", *directories], directory)
    if commit_sha:
        git(["-c", "advice.detachedHead=false", "checkout", "-q", commit_sha], directory)
    if include_submodules:
        git(["submodule", "update", "--init", "--recursive"], directory)
    return {"directory": directory}


def _token_of(credentials: Any) -> str | None:
    if isinstance(credentials, Mapping):
        for key in ("access_token", "token", "password"):
            if credentials.get(key):
                return str(credentials[key])
    return None


def _with_token(repository: str, token: str) -> str:
    parts = urlsplit(repository)
    if parts.scheme not in ("http", "https"):
        return repository
    return urlunsplit(
        parts._replace(netloc=f"{token}@{parts.hostname}" + (f":{parts.port}" if parts.port else ""))
    )


def _repo_dir_name(repository: str, branch: str | None) -> str:
    name = repository.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    name = name.removesuffix(".git") or "repository"
    # Prefect names a branch clone `<repo>-<branch>`, so two branches of one repository can sit side by side.
    return f"{name}-{branch.replace('/', '-')}" if branch else name


def _git_runner(env: Mapping[str, str], secrets: Sequence[str]) -> Callable[[list[str], str | None], None]:
    git_env = {**env, "GIT_TERMINAL_PROMPT": "0"}

    def run(args: list[str], cwd: str | None) -> None:
        done = subprocess.run(
            ["git", *args], cwd=cwd, env=git_env, capture_output=True, text=True, check=False
        )
        output = _hide(done.stdout + done.stderr, secrets).strip()
        if done.returncode != 0:
            shown = _hide(shlex.join(["git", *args]), secrets)
            raise PullStepError(f"`{shown}` exited with {done.returncode}: {output}")

    return run


def _hide(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "(sensitive)")
    return text


def run_shell_script(
    *,
    script: str,
    directory: str | None = None,
    env: Mapping[str, Any] | None = None,
    stream_output: bool = True,
    expand_env_vars: bool = False,
    process_env: Mapping[str, str],
    out: TextIO,
) -> dict[str, Any]:
    """Run each line of `script` as a command (no shell, as Prefect does); stop at the first failure.

    Returns `{"stdout": ..., "stderr": ...}` of all commands, stripped.
    """
    run_env = {**process_env, **{k: str(v) for k, v in (env or {}).items()}}
    stdout: list[str] = []
    stderr: list[str] = []
    for line in script.splitlines():
        if not line.strip():
            continue
        command = os.path.expandvars(line) if expand_env_vars else line
        done = _run_command(shlex.split(command), directory, run_env)
        stdout.append(done.stdout)
        stderr.append(done.stderr)
        if stream_output:
            _echo(done.stdout, done.stderr, out)
        if done.returncode != 0:
            output = (done.stdout + done.stderr).strip()
            raise PullStepError(f"`{line.strip()}` exited with {done.returncode}: {output}")
    return {"stdout": "".join(stdout).strip(), "stderr": "".join(stderr).strip()}


def _run_command(
    argv: list[str], cwd: str | None, env: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, cwd=cwd, env=dict(env), capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise PullStepError(f"cannot run {shlex.join(argv)}: {exc.strerror}: {exc.filename}") from None


def _echo(stdout: str, stderr: str, out: TextIO) -> None:
    if stdout:
        out.write(stdout if stdout.endswith("\n") else stdout + "\n")
    if stderr:
        # stderr of the step goes to the process's stderr so it is shipped as an stderr log line
        sys.stderr.write(stderr if stderr.endswith("\n") else stderr + "\n")
    out.flush()
    sys.stderr.flush()


def pip_install_requirements(
    *,
    directory: str | None = None,
    requirements_file: str = "requirements.txt",
    stream_output: bool = True,
    process_env: Mapping[str, str],
    out: TextIO,
) -> dict[str, Any]:
    """`pip install -r requirements_file` with the interpreter that runs the flow."""
    path = Path(directory or ".", requirements_file)
    if not path.is_file():
        raise PullStepError(f"requirements file {str(path)!r} does not exist (relative to {os.getcwd()})")
    argv = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "-r", str(path)]
    done = _run_command(argv, None, process_env)
    if stream_output:
        _echo(done.stdout, done.stderr, out)
    if done.returncode != 0:
        raise PullStepError(
            f"pip install -r {path} exited with {done.returncode}: {(done.stdout + done.stderr).strip()}"
        )
    return {"stdout": done.stdout.strip(), "stderr": done.stderr.strip()}


STEPS: dict[str, Callable[..., dict[str, Any]]] = {
    "git_clone": git_clone,
    "set_working_directory": set_working_directory,
    "run_shell_script": run_shell_script,
    "pip_install_requirements": pip_install_requirements,
}
