"""Which docker runs a standby container may serve, and what a standby is asked for, decided before any engine call
(no Docker needed): the key ignores exactly the run's own values, and the standby carries none of them."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

from reconciler.model import Deployment, FlowRun
from reconciler.runtime.executors.base import Job
from reconciler.runtime.executors.docker import container_spec
from reconciler.runtime.executors.docker_standby import (
    STANDBY_LABEL,
    handoff_payload,
    standby_key,
    standby_spec,
)

BASE = {"image": "flows:2.1", "env": {"PREFECT_LOGGING_LEVEL": "INFO"}, "volumes": ["/srv:/srv:ro"]}


def job(run_id: str = "0f3c2a9e-1111", worker_env: dict[str, str] | None = None, **configuration: Any) -> Job:
    run = FlowRun(
        id=run_id,
        name=f"run-{run_id[:4]}",
        flow="etl",
        deployment="etl/nightly",
        work_pool="docker-pool",
        work_queue="default",
        state="PENDING",
        expected_start_time=datetime(2030, 1, 1, tzinfo=UTC),
        parameters={"n": run_id},
    )
    pull = configuration.pop("pull_steps", ())
    deployment = Deployment(
        flow="etl", name="nightly", entrypoint="flows/etl.py:etl", work_pool="docker-pool", pull_steps=pull
    )
    return Job(run, deployment, {**BASE, **configuration}, worker_env or {"WP_API_KEY": "k"}, "w1")


def key(j: Job) -> str | None:
    return standby_key(j, container_spec(j))


def test_two_runs_of_one_configuration_share_a_key_and_a_prefect_setting_parts_them() -> None:
    first, second = job("0f3c2a9e-1111"), job("7d1b0c44-2222")
    assert key(first) is not None and key(first) == key(second)  # run id, name, parameters are not in it
    assert key(job(env={"PREFECT_LOGGING_LEVEL": "DEBUG"})) != key(first)  # read by Prefect at import
    assert key(job(mem_limit="1g")) != key(first)
    assert key(job(image="flows:2.2")) != key(first)


def test_no_standby_for_a_custom_command_an_always_pulled_image_pip_installs_or_warm_off() -> None:
    assert key(job(command="python3 -m mine")) is None  # the handoff is the runner's
    assert key(job(image="flows:latest")) is None  # pulled for every run
    assert key(job(pull_steps=({"prefect.deployments.steps.pip_install_requirements": {}},))) is None
    assert key(job(env={"WP_PREFECT_WARM": "0"})) is None
    assert key(job(worker_env={"WP_PREFECT_WARM": "0"})) is None


def test_a_standby_carries_no_run_values_and_the_handoff_carries_them() -> None:
    j = job(labels={"team": "data"})
    spec = container_spec(j)
    standby = standby_spec(j, spec, "k1", "instance1")
    assert standby.name.startswith("wp-standby-") and standby.name != spec.name
    assert "io.wp.flow-run-id" not in standby.labels and "io.wp.flow-run-name" not in standby.labels
    assert standby.labels[STANDBY_LABEL] == "k1" and standby.labels["team"] == "data"
    assert standby.labels["io.wp.deployment"] == "etl/nightly" and standby.labels["io.wp.worker"] == "w1"
    assert not {"WP_FLOW_RUN_ID", "WP_PARAMETERS", "WP_ENTRYPOINT", "WP_API_KEY"} & set(standby.env)
    assert standby.env["WP_STANDBY"] == "600" and standby.env["PREFECT_LOGGING_LEVEL"] == "INFO"
    same = {f.name for f in dataclasses.fields(spec)} - {"name", "env", "labels"}
    assert all(getattr(standby, name) == getattr(spec, name) for name in same)
    handed = json.loads(handoff_payload(j, spec))["env"]
    assert handed["WP_FLOW_RUN_ID"] == j.run.id and json.loads(handed["WP_PARAMETERS"]) == {"n": j.run.id}
    assert {**standby.env, **handed}.keys() - {"WP_STANDBY"} == spec.env.keys()  # together: the run's env


def test_the_idle_seconds_come_from_the_job_then_the_worker() -> None:
    assert (
        standby_spec(j := job(worker_env={"WP_PREFECT_WARM_IDLE": "30"}), container_spec(j), "k", "i").env[
            "WP_STANDBY"
        ]
        == "30"
    )
    j = job(env={"WP_PREFECT_WARM_IDLE": "5"}, worker_env={"WP_PREFECT_WARM_IDLE": "30"})
    assert standby_spec(j, container_spec(j), "k", "i").env["WP_STANDBY"] == "5"
