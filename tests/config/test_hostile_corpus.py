"""The hostile-config corpus (tests/config/hostile/) through `wp validate` and `wp ci --mode plan`, as CI runs
them on an unreviewed pull request: each case ends in its one diagnostic at file:line, exit code 1, within a
memory and a time limit, never an internal error and never the content of a file outside the project."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

CORPUS = Path(__file__).parent / "hostile"
CASES = sorted(p.name for p in CORPUS.iterdir() if p.is_dir())
WP = Path(sys.executable).parent / "wp"
MEMORY_LIMIT = 768 * 1024 * 1024  # address space of one wp process; the bombs reached 4 GB before
SECONDS = 60  # wall clock on a loaded 2-core runner; each case takes about 1 s of CPU
SECRET = "OUTSIDE-SECRET-7f3a91"
FLOW = "from prefect import flow\n\n\n@flow\ndef run() -> None:\n    pass\n"


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_wp(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WP_")}
    env["WP_HOME"] = str(cwd / ".wp-home")
    started = time.monotonic()
    done = subprocess.run(
        [str(WP), *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=SECONDS,
        preexec_fn=_limited,
        check=False,
    )
    assert time.monotonic() - started < SECONDS
    return done


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """tmp/outside holds a secret, a flow and a pool file; the project goes to tmp/proj."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "creds.txt").write_text(SECRET + "\n")
    (outside / "evil.py").write_text(FLOW)
    (outside / "pools.yaml").write_text(f"work_pools:\n  - {{name: {SECRET.lower()}, type: process}}\n")
    return tmp_path


def check(workspace: Path, first: str, phrase: str) -> None:
    for args in (("validate", "proj"), ("ci", "--mode", "plan", "--path", "proj")):
        done = run_wp(*args, cwd=workspace)
        out = done.stdout + done.stderr
        assert "Internal error" not in out and "Traceback" not in out, out
        assert SECRET not in out and SECRET.lower() not in out, "a file outside the project was read"
        assert done.returncode == 1, out
        errors = [ln for ln in out.splitlines() if ": error: " in ln]
        assert any(ln.startswith(first) and phrase in ln for ln in errors), (args, out)


@pytest.mark.parametrize("case", CASES)
def test_a_hostile_config_is_one_diagnostic_within_limits(workspace: Path, case: str) -> None:
    shutil.copytree(CORPUS / case, workspace / "proj", ignore=shutil.ignore_patterns("expect.txt"))
    first, phrase = (CORPUS / case / "expect.txt").read_text().splitlines()[:2]
    check(workspace, first, phrase)


def test_a_fifo_and_a_symlink_out_of_the_project(workspace: Path) -> None:
    proj = workspace / "proj"
    (proj / "pools").mkdir(parents=True)
    (proj / "pools" / "linked.yaml").symlink_to(workspace / "outside" / "pools.yaml")
    os.mkfifo(proj / "pipe")
    (proj / "wp.yaml").write_text(
        "project: x\ninclude: ['pools/*.yaml']\nwork_pools:\n  - {name: p, type: process, description: !file pipe}\n"
    )
    check(workspace, "wp.yaml:2:", "outside the project directory")
    check(workspace, "wp.yaml:4:", "not a regular file")
