"""What the docker executor asks the engine for, decided before any engine call (no Docker needed): the pull
policy's default rule, names, labels, volumes, limits, the command and an environment without credentials; and
a worker for a docker pool with no engine to talk to refuses to start, saying why."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from wp_cli import run_wp

from reconciler.model import Deployment, FlowRun
from reconciler.runtime.executors.base import ExecutorError, Job
from reconciler.runtime.executors.container import BOOTSTRAP
from reconciler.runtime.executors.docker import container_name, container_spec, default_pull_policy


def job(**configuration: Any) -> Job:
    run = FlowRun(
        id="0f3c2a9e-1111-2222-3333-444455556666",
        name="brave-otter",
        flow="etl",
        deployment="etl/nightly",
        work_pool="docker-pool",
        work_queue="high",
        state="PENDING",
        expected_start_time=datetime(2030, 1, 1, tzinfo=UTC),
    )
    deployment = Deployment(
        flow="etl", name="nightly", entrypoint="flows/etl.py:etl", work_pool="docker-pool"
    )
    return Job(run, deployment, configuration, {"WP_API_KEY": "k", "WP_DOCKER_IMAGE": "team/base:1"}, "w1")


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        ("python", "Always"),
        ("python:latest", "Always"),
        ("registry.local:5000/team/flows", "Always"),  # a port is not a tag
        ("registry.local:5000/team/flows:2.1", "IfNotPresent"),
        ("python:3.12-slim", "IfNotPresent"),
        ("python@sha256:" + "a" * 64, "IfNotPresent"),
    ],
)
def test_the_default_pull_policy(image: str, policy: str) -> None:
    assert default_pull_policy(image) == policy


def test_the_spec_carries_every_setting_and_the_run_labels() -> None:
    spec = container_spec(
        job(
            image="flows:2.1",
            env={"GREETING": "hi", "WP_API_URL": "http://x"},
            labels={"team": "data"},
            name="nightly etl/run #1",
            network_mode="none",
            volumes=["/srv/cache:/cache:ro", "/data:/data"],
            mem_limit="512m",
            privileged=True,
            auto_remove=True,
            working_dir="/opt/flows",
        )
    )
    assert spec.image == "flows:2.1" and spec.pull_policy == "IfNotPresent"
    assert spec.command[0] == "python3" and spec.command[2] == BOOTSTRAP
    assert spec.env["GREETING"] == "hi" and "WP_API_URL" not in spec.env and "WP_API_KEY" not in spec.env
    assert spec.labels["team"] == "data"
    assert spec.labels["io.wp.flow-run-id"] == "0f3c2a9e-1111-2222-3333-444455556666"
    assert spec.labels["io.wp.flow-run-name"] == "brave-otter"
    assert (
        spec.labels["io.wp.deployment"] == "etl/nightly" and spec.labels["io.wp.work-pool"] == "docker-pool"
    )
    assert spec.labels["io.wp.work-queue"] == "high" and spec.labels["io.wp.worker"] == "w1"
    assert spec.name == "nightly-etl-run-1"
    assert spec.volumes == ["/srv/cache:/cache:ro", "/data:/data"]
    assert (spec.mem_limit, spec.privileged, spec.auto_remove) == ("512m", True, True)
    assert spec.working_dir == "/opt/flows" and spec.network_mode == "none"


def test_unset_image_takes_the_workers_default_and_a_string_command_is_split() -> None:
    spec = container_spec(job(command="python3 -c 'print(1)'"))
    assert spec.image == "team/base:1" and spec.pull_policy == "IfNotPresent"
    assert spec.command == ["python3", "-c", "print(1)"]


def test_container_names_are_made_valid() -> None:
    assert container_name("brave-otter", "abc") == "brave-otter"
    assert container_name("--/weird name!", "0f3c2a9e-11") == "weird-name-"
    assert container_name("///", "0f3c2a9e-11") == "wp-0f3c2a9e"


@pytest.mark.parametrize(
    ("configuration", "message"),
    [
        ({"volumes": ["/only-one-part"]}, "must look like host_path:container_path"),
        ({"volumes": ["/a:/b:"]}, "empty mode"),
        ({"mem_limit": "lots"}, "mem_limit 'lots' is not a size"),
        ({"image_pull_policy": "Sometimes"}, "not one of Always, IfNotPresent, Never"),
        ({"networks": "bridge"}, "networks must be a list of strings"),
        ({"command": ["python3", 1]}, "command must be a string or a list of strings"),
    ],
)
def test_bad_settings_are_errors_naming_the_field(configuration: dict[str, Any], message: str) -> None:
    with pytest.raises(ExecutorError, match=message):
        container_spec(job(**configuration))


def test_a_docker_worker_without_an_engine_refuses_to_start(tmp_path: Path) -> None:
    env: dict[str, str | None] = {
        "WP_HOME": str(tmp_path),
        "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock",
    }
    assert run_wp("work-pool", "create", "boxes", "--type", "docker", env=env).code == 0
    started = run_wp("worker", "start", "--pool", "boxes", env=env)
    assert started.code == 1
    assert "cannot reach the Docker Engine" in " ".join(started.stderr.split())
