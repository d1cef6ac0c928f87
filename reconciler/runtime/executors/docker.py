"""The `docker` executor: a run as a container on a Docker Engine (the `docker` SDK; `DOCKER_HOST` or the
default socket).

Owns turning a rendered docker job configuration (image, image_pull_policy, command, env, labels, name,
network_mode, networks, volumes, mem_limit, privileged, auto_remove, working_dir) into a `ContainerSpec`
(pure, every mistake an `ExecutorError` naming the field), and the executor's two entry points: `start` (hand
the spec to a `DockerContainer`, which does the engine calls on its own thread) and `reattach` (follow a
container an earlier life of this worker started, found by its id or name and checked by its labels).

The default command is the container runner (`executors.container`): any image with a `python3` runs the
deployment, the container gets no API credentials and reports through its output. A run of a configuration whose
last run was a Prefect flow may be served by a standby container that imported Prefect while it waited
(`docker_standby`; `WP_PREFECT_WARM=0` turns that off): `start` takes it when there is one, and a run's end starts
the next; `reattach` accepts such a container by the full id stored on the run (it has no run labels); `close`
removes the standbys when the worker stops.

Must never touch the store or decide run states beyond what a container's end means (`docker_container`).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.model import FlowRun
from reconciler.runtime.executors.base import ExecutorError, Job
from reconciler.runtime.executors.container import (
    command_of,
    default_image,
    runner_command,
    runner_env,
)
from reconciler.runtime.executors.docker_container import (
    AUTO_REMOVE_LABEL,
    RUN_ID_LABEL,
    DockerContainer,
)
from reconciler.runtime.executors.docker_standby import (
    STANDBY_LABEL,
    Standbys,
    handoff_payload,
    idle_seconds,
    never_handed_over,
    standby_key,
    standby_spec,
)

PULL_POLICIES = ("Always", "IfNotPresent", "Never")
LABEL_PREFIX = "io.wp."
# what Docker accepts as a container name
NAME_OK = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")


@dataclass(frozen=True)
class ContainerSpec:
    """Everything the engine is asked for, decided before any call to it."""

    image: str
    pull_policy: str
    command: list[str]
    env: dict[str, str]
    labels: dict[str, str]
    name: str
    network_mode: str | None = None
    networks: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    mem_limit: str | int | None = None
    privileged: bool = False
    auto_remove: bool = False
    working_dir: str | None = None


class DockerExecutor:
    type = "docker"

    def __init__(self) -> None:
        import docker
        from docker.errors import DockerException

        try:
            self._client = docker.from_env()
            self._client.ping()
            self._standbys = Standbys(self._client.api)
        except DockerException as exc:
            raise ExecutorError(
                f"cannot reach the Docker Engine (DOCKER_HOST or the default socket): {exc}; "
                "start dockerd or point DOCKER_HOST at one"
            ) from None

    def start(self, job: Job) -> DockerContainer:
        spec = container_spec(job)
        container = DockerContainer(self._client.api, spec.name, auto_remove=spec.auto_remove)
        key = standby_key(job, spec)
        if key is None:
            container.launch(spec)
            return container
        if job.worker_name:
            self._standbys.clean_orphans(job.worker_name)
        standby_of = standby_spec(job, spec, key, self._standbys.instance)
        idle = idle_seconds(job)

        def after(ended: DockerContainer) -> None:  # a Prefect flow's run: keep a standby for the next one
            if ended.engine == "prefect":
                self._standbys.replenish(key, standby_of, idle)

        container.on_end = after
        standby = self._standbys.take(key)
        if standby is None:
            container.launch(spec)
        else:
            container.adopt(standby, spec, handoff_payload(job, spec))
        return container

    def close(self) -> None:
        """The worker stops: remove the standby containers still waiting."""
        self._standbys.close()

    def reattach(self, run: FlowRun, infrastructure_id: str) -> DockerContainer | None:
        """The container by its stored id, else by the run's label (the id stored may be the name wanted
        before a taken name got a suffix)."""
        from docker.errors import NotFound

        api = self._client.api
        if run.worker:  # this worker's earlier life may have left standbys that never got a run
            self._standbys.clean_orphans(run.worker)
        info: dict[str, Any] = {}
        if infrastructure_id:
            with contextlib.suppress(NotFound):
                info = api.inspect_container(infrastructure_id)
        labels = (info.get("Config") or {}).get("Labels") or {}
        if info and never_handed_over(info):  # the worker died between recording it and handing it the run
            with contextlib.suppress(Exception):
                api.remove_container(info["Id"], force=True)
            return None
        # a standby that served the run has no run labels: the full id stored on the run is what ties them
        by_id = STANDBY_LABEL in labels and info.get("Id") == infrastructure_id
        if labels.get(RUN_ID_LABEL) != run.id and not by_id:  # gone, or a name reused by another container
            found = api.containers(all=True, filters={"label": f"{RUN_ID_LABEL}={run.id}"})
            if not found:
                return None
            info = api.inspect_container(found[0]["Id"])
            labels = (info.get("Config") or {}).get("Labels") or {}
        container = DockerContainer(
            self._client.api, str(info["Id"]), auto_remove=labels.get(AUTO_REMOVE_LABEL) == "true"
        )
        container.follow_existing()
        return container


def container_spec(job: Job) -> ContainerSpec:
    config = job.configuration
    image = _text(config, "image") or default_image(job.worker_env)
    policy = _text(config, "image_pull_policy") or default_pull_policy(image)
    if policy not in PULL_POLICIES:
        raise ExecutorError(f"image_pull_policy {policy!r} is not one of {', '.join(PULL_POLICIES)}")
    auto_remove = bool(config.get("auto_remove") or False)
    return ContainerSpec(
        image=image,
        pull_policy=policy,
        command=command_of(config.get("command")) or runner_command(),
        env=runner_env(job),
        labels={
            **_labels(config.get("labels")),
            **run_labels(job),
            AUTO_REMOVE_LABEL: str(auto_remove).lower(),
        },
        name=container_name(_text(config, "name") or job.run.name, job.run.id),
        network_mode=_text(config, "network_mode"),
        networks=_strings(config, "networks"),
        volumes=[_volume(v) for v in _strings(config, "volumes")],
        mem_limit=_mem_limit(config.get("mem_limit")),
        privileged=bool(config.get("privileged") or False),
        auto_remove=auto_remove,
        working_dir=_text(config, "working_dir"),
    )


def run_labels(job: Job) -> dict[str, str]:
    """The labels that tie a container to its run (SPEC §5), found again by a restarted worker."""
    run = job.run
    return {
        RUN_ID_LABEL: run.id,
        f"{LABEL_PREFIX}flow-run-name": run.name,
        f"{LABEL_PREFIX}deployment": run.deployment,
        f"{LABEL_PREFIX}work-pool": run.work_pool,
        f"{LABEL_PREFIX}work-queue": run.work_queue,
        f"{LABEL_PREFIX}worker": job.worker_name,
    }


def default_pull_policy(image: str) -> str:
    """`Always` for a `latest` or missing tag, else `IfNotPresent` (a digest pins the image: IfNotPresent)."""
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    tag = last.partition(":")[2]
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def container_name(wanted: str, run_id: str) -> str:
    """`wanted` made a valid Docker name (invalid characters become `-`); empty → `wp-<run id>`."""
    name = re.sub(r"[^a-zA-Z0-9_.-]+", "-", wanted).lstrip("_.-")[:200]
    return name if name and NAME_OK.fullmatch(name) else f"wp-{run_id[:8]}"


def _text(config: Mapping[str, Any], key: str) -> str | None:
    value = config.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ExecutorError(f"{key} must be a string, not {value!r}")
    return value


def _strings(config: Mapping[str, Any], key: str) -> list[str]:
    value = config.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ExecutorError(f"{key} must be a list of strings, not {value!r}")
    return list(value)


def _labels(value: Any) -> dict[str, str]:
    if not value:
        return {}
    if not isinstance(value, Mapping):
        raise ExecutorError(f"labels must be a mapping of names to strings, not {value!r}")
    return {str(k): str(v) for k, v in value.items() if v is not None}


def _volume(value: str) -> str:
    parts = value.split(":")
    if len(parts) not in (2, 3) or not all(parts[:2]):
        raise ExecutorError(
            f"volume {value!r} must look like host_path:container_path[:mode], e.g. /data:/data:ro"
        )
    if len(parts) == 3 and not parts[2]:
        raise ExecutorError(f"volume {value!r} has an empty mode; use ro or rw")
    return value


def _mem_limit(value: Any) -> str | int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ExecutorError(f"mem_limit must be a size such as 512m or 2g, not {value!r}")
    if isinstance(value, str) and not re.fullmatch(r"\d+(\.\d+)?[bkmgBKMG]?", value.strip()):
        raise ExecutorError(f"mem_limit {value!r} is not a size; write it like 512m or 2g")
    return value.strip() if isinstance(value, str) else value
