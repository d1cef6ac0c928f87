"""The Python of a separate virtualenv with a real Prefect, made by tests/prefect_env.sh (wp's own environment never
gets Prefect). `WP_PREFECT_PYTHON` names it; otherwise the script's cached venv is used when it exists. Tests that
need it skip when it is absent, and fail when CI=true (`.ci/run` makes it first)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PREFECT_VERSION = os.environ.get("WP_PREFECT_VERSION", "3.9.1")


def prefect_python() -> Path:
    """The venv's python, or skip (fail under CI) with how to make it."""
    given = os.environ.get("WP_PREFECT_PYTHON")
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    venv = Path(os.environ.get("WP_PREFECT_VENV", cache / "wp-test" / f"prefect-{PREFECT_VERSION}"))
    python = Path(given) if given else venv / "bin" / "python"
    complete = given or (venv / ".wp-prefect-ok").is_file()
    if python.is_file() and complete:
        return python
    message = f"no Prefect {PREFECT_VERSION} venv at {python}: make it with `bash tests/prefect_env.sh`"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def runner_env() -> dict[str, str]:
    """What a flow environment needs to run wp's runner: wp's source on the path (the runner is stdlib-only)."""
    return {"PYTHONPATH": str(REPO)}
