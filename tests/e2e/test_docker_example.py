"""examples/platform's Docker pool runs for real: applied to a fresh store, its deployment runs in a container
on the test engine (image overridden at run time with a locally built one: no registry is reachable) and
completes with the flow's output in `wp flow-run logs`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from wp_cli import run_wp

pytestmark = [pytest.mark.docker, pytest.mark.xdist_group("docker")]

ROOT = Path(__file__).resolve().parents[2]
PLATFORM = ROOT / "examples" / "platform"


@pytest.fixture(scope="module")
def newest_image() -> str:
    try:
        import docker

        docker.from_env().ping()
    except Exception as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"no Docker Engine reachable: {exc}")
        pytest.skip(f"no Docker Engine reachable: {exc}")
    done = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "docker_images.py"), "--json"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    images: dict[str, str] = json.loads(done.stdout)
    return max(images, key=lambda ref: tuple(int(p) for p in images[ref].split(".")))


def test_the_platform_docker_pool_runs_its_deployment(newest_image: str, tmp_path: Path) -> None:
    env: dict[str, str | None] = {"WP_HOME": str(tmp_path)}
    assert run_wp("apply", PLATFORM, "--auto-approve", env=env).code == 0
    started = run_wp(
        "deployment",
        "run",
        "run-checks/checks-in-docker",
        "--job-variable",
        f"image={newest_image}",
        "--json",
        env=env,
    )
    assert started.code == 0, started.stderr
    run_id = started.json()["id"]
    worker_env = {k: v for k, v in os.environ.items() if not k.startswith("WP_")}
    worker_env.update({"WP_HOME": str(tmp_path), "WP_PLATFORM_DIR": str(PLATFORM)})
    worker = subprocess.run(
        ["wp", "worker", "start", "--pool", "docker-local", "--type", "docker", "--run-once"],
        env=worker_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert worker.returncode == 0, worker.stdout + worker.stderr
    run = run_wp("flow-run", "inspect", run_id, "--json", env=env).json()
    assert run["state"] == "COMPLETED", (run["state_message"], worker.stdout)
    assert len(run["infrastructure_id"]) == 64  # the container's id
    logs = run_wp("flow-run", "logs", run_id, env=env).stdout
    assert "running the smoke suite" in logs
    assert "running the smoke suite" in worker.stdout  # stream_output: the worker prints it too
