"""Running the `wp` command in tests: in-process through the console-script entry point (fast), or as a real
subprocess of the installed `wp` script (to prove exit codes across a process boundary).

Both isolate the store: the caller passes WP_HOME (or WP_DATABASE_URL) and every other store variable from
the outside environment is removed. Both fail the test if wp printed a traceback or an internal error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from click.testing import CliRunner

# Variables that choose or change the store or the error output; never inherited from the test's environment.
ISOLATED = ("WP_API_URL", "WP_API_KEY", "WP_DATABASE_URL", "WP_HOME", "WP_DEBUG")
WP_SCRIPT = Path(sys.executable).parent / "wp"


ProjectWriter = Callable[[str, str], Path]  # (directory name, wp.yaml text) -> the project directory


@dataclass(frozen=True)
class WpResult:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


class Wp(Protocol):
    """`wp(*args, env=..., input=...)` as the CLI fixtures provide it."""

    def __call__(
        self, *args: str | Path, env: dict[str, str | None] | None = ..., input: str | None = ...
    ) -> WpResult: ...


class _ConsoleScript:
    """Looks like a click command to CliRunner; runs `reconciler.cli.main.run`, what the console script
    (`main`) runs."""

    name = "wp"

    def main(self, args: list[str], prog_name: str, **_: Any) -> None:
        from reconciler.cli.main import run

        saved = sys.argv
        sys.argv = [prog_name, *args]
        try:
            run()
        finally:
            sys.argv = saved


def _checked(result: WpResult) -> WpResult:
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert "Internal error" not in output, output
    return result


def run_wp(*args: str | Path, env: Mapping[str, str | None], input: str | None = None) -> WpResult:
    """`wp ARGS` in this process; `env` is applied over the outside environment (None removes a variable)."""
    full_env: dict[str, str | None] = dict.fromkeys(ISOLATED) | dict(env)
    result = CliRunner().invoke(
        _ConsoleScript(),  # type: ignore[arg-type]
        [str(a) for a in args],
        env=full_env,
        input=input,
        catch_exceptions=False,
    )
    return _checked(WpResult(result.exit_code, result.stdout, result.stderr))


def run_wp_process(
    *args: str | Path, env: Mapping[str, str | None], input: str | None = None, timeout: float = 60
) -> WpResult:
    """`wp ARGS` as a real child process of the installed console script; stdin is not a terminal."""
    full_env = {k: v for k, v in os.environ.items() if k not in ISOLATED}
    full_env |= {k: v for k, v in env.items() if v is not None}
    for key in (k for k, v in env.items() if v is None):
        full_env.pop(key, None)
    done = subprocess.run(
        [str(WP_SCRIPT), *(str(a) for a in args)],
        env=full_env,
        input=input or "",
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return _checked(WpResult(done.returncode, done.stdout, done.stderr))
