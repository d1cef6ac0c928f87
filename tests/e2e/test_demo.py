"""The README's demo (examples/quickstart/demo.sh) runs end to end as a newcomer runs it: a wp server on a free
port, a worker, a deployment run followed to COMPLETED, its logs, and both processes stopped at the end."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "examples" / "quickstart" / "demo.sh"


@pytest.mark.slow
def test_demo_runs_the_whole_runtime_and_cleans_up(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WP_")}
    env |= {
        "WP_HOME": str(tmp_path / "home"),
        "TMPDIR": str(tmp_path),
        # the `wp` next to this interpreter, running the working tree's code
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p),
    }
    done = subprocess.run(
        ["bash", str(DEMO)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=90
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    # once as it runs (--watch), once from `wp flow-run logs`; the worker's own stream goes to its log file
    assert done.stdout.count("Hello, newcomer!") == 2, done.stdout
    assert "finished in state COMPLETED" in done.stdout
    assert "Traceback" not in output
    # the demo used its own server on the embedded store, and stopped it
    assert (tmp_path / "home" / "wp.db").exists()
    url = re.search(r"WP_API_URL=(http://127\.0\.0\.1:\d+)", done.stdout)
    assert url is not None, done.stdout
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url.group(1)}/health", timeout=2)
    assert done.stdout.rstrip().endswith("stopped.")
    assert list(tmp_path.glob("wp-demo.*")) == []  # its temporary log directory is gone
