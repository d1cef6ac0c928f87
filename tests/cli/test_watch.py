"""`wp deployment run --watch` shows state changes as they happen, and says when no worker serves the pool."""

from __future__ import annotations

import os
import select
import subprocess
import time
from pathlib import Path

from wp_cli import WP_SCRIPT, Wp


def test_watch_without_a_worker_says_how_to_start_one(wp: Wp, demo: Path, home: Path) -> None:
    assert wp("apply", demo, "--auto-approve").code == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("WP_")} | {"WP_HOME": str(home)}
    proc = subprocess.Popen(
        [str(WP_SCRIPT), "deployment", "run", "say-hello/d", "--watch"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    seen = ""
    deadline = time.monotonic() + 40
    try:
        assert proc.stdout is not None
        while time.monotonic() < deadline and "wp worker start" not in seen:
            ready, _, _ = select.select([proc.stdout], [], [], 1.0)
            if not ready:
                continue  # silence is what the bug was: keep waiting until the deadline
            chunk = os.read(proc.stdout.fileno(), 4096).decode()
            if not chunk:
                break
            seen += chunk
    finally:
        proc.kill()
        proc.wait()
    text = " ".join(seen.split())
    assert "SCHEDULED" in text  # the state as it is now, not silence
    assert "No worker is online for work pool p (queue urgent)" in text
    assert "wp worker start --pool p --work-queue urgent" in text
