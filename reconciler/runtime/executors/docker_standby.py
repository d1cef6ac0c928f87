"""Standby containers: the docker executor's warm start for Prefect flows.

Owns the worker's side (the container's side is `runtime/container_standby.py`): which runs may be served by a
standby (`standby_key`), the standby's spec, the handoff payload, and `Standbys`, the executor's set of waiting
containers (one per key at most), with their creation, removal when the worker stops, and the removal of a
dead earlier life's standbys.

Why: every container run is a fresh interpreter, and `import prefect` costs ~1.5 s of CPU, more than a small flow's
run. After a run that reported it was a Prefect flow, the executor starts ONE container from the same rendered
configuration (image, env, volumes, network, resources, template labels, deployment, pool, queue, worker) minus
what belongs to a single run (the run's variables, the run's id and name labels, the container's name); it imports
Prefect and waits on its stdin. The next run with the same key is handed to it: the worker records the container
as the run's infrastructure first (a crash then never leaves a run nobody can find), the container is renamed to
the run's container name and gets the run's variables over its attached stdin, and is followed as any run's; when
it ends, the next standby starts.

The key is everything the engine is asked for except those per-run values, so a standby is the container the run
would have got, but for two labels: a container's labels are fixed at creation, so one served by a standby has no
`io.wp.flow-run-id`/`io.wp.flow-run-name`; it carries `io.wp.standby` instead, and a restarted worker finds it by
the id stored on the run (a full container id, which the engine never reuses). The key holds the `PREFECT_*`
settings (they are in the configured env, which Prefect reads at import); the per-run variables hold none.

Used only for the runner (no custom `command`: the handoff is the runner's), an image that is not pulled per run
(pull policy `Always` must pull), no `pip_install_requirements` step (it could change what the standby imported),
unless `WP_PREFECT_WARM=0` (the job's env or the worker's). A standby ends itself after `WP_PREFECT_WARM_IDLE`
seconds (default 600) without a run; the worker does not hand it a run in its last `EXPIRY_MARGIN` seconds.

Must never touch the store.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reconciler.runtime.container_standby import ENV_STANDBY
from reconciler.runtime.executors.base import Job, configured_env, entry_env
from reconciler.runtime.executors.docker_container import RUN_ID_LABEL
from reconciler.runtime.prefect_warm import ENV_IDLE, ENV_WARM, IDLE_SECONDS

if TYPE_CHECKING:
    from reconciler.runtime.executors.docker import ContainerSpec

STANDBY_LABEL = "io.wp.standby"  # the configuration key the standby was made for
INSTANCE_LABEL = "io.wp.standby-of"  # the executor (one worker's life) that made it
WORKER_LABEL = "io.wp.worker"
NAME_PREFIX = "wp-standby-"  # a standby's name until it is renamed to its run's
PER_RUN_LABELS = (RUN_ID_LABEL, "io.wp.flow-run-name")
EXPIRY_MARGIN = 30.0  # seconds before a standby's own expiry that the worker stops handing it runs
# standbys one worker keeps at most (each holds an imported Prefect, ~80 MB resident); a new one removes the oldest
MAX_WAITING = 4
CLOSE_WAIT = 30.0  # seconds a stopping worker waits for a standby being made, to remove it


@dataclass(frozen=True)
class Standby:
    id: str
    image_id: str  # the image it runs: a run is handed to it only while the spec's image is still that one
    ready_by: float  # monotonic time after which it is not handed a run (it ends itself soon after)


def standby_key(job: Job, spec: ContainerSpec) -> str | None:
    """The key of the standby that may serve this run; None when none may (see the module docstring)."""
    config = job.configuration
    if spec.env.get(ENV_WARM) == "0" or job.worker_env.get(ENV_WARM) == "0":
        return None
    if config.get("command") or spec.pull_policy == "Always":
        return None
    if any(step and "pip_install_requirements" in json.dumps(step) for step in job.deployment.pull_steps):
        return None
    per_run = set(entry_env(job))
    fields = dataclasses.asdict(spec)
    fields.pop("name")
    fields["env"] = {k: v for k, v in spec.env.items() if k not in per_run}
    fields["labels"] = {k: v for k, v in spec.labels.items() if k not in PER_RUN_LABELS}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def idle_seconds(job: Job) -> float:
    raw = configured_env(job.configuration).get(ENV_IDLE) or job.worker_env.get(ENV_IDLE)
    try:
        return max(1.0, float(raw)) if raw else IDLE_SECONDS
    except ValueError:
        return IDLE_SECONDS


def standby_spec(job: Job, spec: ContainerSpec, key: str, instance: str) -> ContainerSpec:
    """The run's spec minus its per-run values, waiting for a run for `idle_seconds`."""
    per_run = set(entry_env(job))
    env = {k: v for k, v in spec.env.items() if k not in per_run}
    env[ENV_STANDBY] = f"{idle_seconds(job):g}"
    labels = {k: v for k, v in spec.labels.items() if k not in PER_RUN_LABELS}
    labels.update({STANDBY_LABEL: key, INSTANCE_LABEL: instance})
    return dataclasses.replace(spec, name=f"{NAME_PREFIX}{os.urandom(6).hex()}", env=env, labels=labels)


def handoff_payload(job: Job, spec: ContainerSpec) -> bytes:
    """The line a standby reads on its stdin: the run's own variables."""
    return json.dumps({"env": {k: spec.env[k] for k in entry_env(job) if k in spec.env}}).encode() + b"\n"


def never_handed_over(info: Mapping[str, Any]) -> bool:
    """A standby container that still waits (or waited) for its run: it still has its standby name."""
    labels = (info.get("Config") or {}).get("Labels") or {}
    return STANDBY_LABEL in labels and str(info.get("Name", "")).lstrip("/").startswith(NAME_PREFIX)


class Standbys:
    """One executor's waiting standby containers, by key. Engine calls happen on the callers' threads (the
    containers' own threads), never on the worker's loop."""

    def __init__(self, api: Any) -> None:
        self._api = api
        self.instance = uuid.uuid4().hex[:12]
        self._lock = threading.Condition()
        self._waiting: dict[str, Standby] = {}
        self._starting: set[str] = set()
        self._cleaned: set[str] = set()
        self._closed = False

    def take(self, key: str) -> Standby | None:
        """The waiting standby of `key`, no longer waiting; None when there is none still fresh."""
        with self._lock:
            standby = self._waiting.pop(key, None)
        if standby is not None and time.monotonic() > standby.ready_by:
            self._remove_later(standby.id)
            return None
        return standby

    def replenish(self, key: str, spec: ContainerSpec, idle: float) -> None:
        """Create and start the standby of `key` unless one waits or is starting (on the caller's thread)."""
        with self._lock:
            if self._closed or key in self._starting or key in self._waiting:
                return
            self._starting.add(key)
            evicted = []
            while self._waiting and len(self._waiting) + len(self._starting) > MAX_WAITING:
                oldest = min(self._waiting, key=lambda k: self._waiting[k].ready_by)
                evicted.append(self._waiting.pop(oldest).id)
        for old_id in evicted:
            self._remove(old_id)
        container_id = ""
        try:
            created = self._api.create_container(
                image=spec.image,
                command=spec.command,
                environment=spec.env,
                labels=spec.labels,
                working_dir=spec.working_dir,
                name=spec.name,
                host_config=self._api.create_host_config(
                    binds=spec.volumes or None,
                    network_mode=spec.network_mode or (spec.networks[0] if spec.networks else None),
                    mem_limit=spec.mem_limit,
                    privileged=spec.privileged,
                ),
                tty=False,
                # stdin open for the run's variables; the SDK sets StdinOnce (stdin closes when the worker's
                # attachment does) only for an attached container (detach=False), which is all `detach` means here
                stdin_open=True,
                detach=False,
            )
            container_id = str(created["Id"])
            for network in spec.networks[1:] if not spec.network_mode else spec.networks:
                self._api.connect_container_to_network(container_id, network)
            self._api.start(container_id)
            image_id = str(self._api.inspect_container(container_id).get("Image", ""))
        except Exception:  # no standby: the next run starts cold, as without one
            if container_id:
                self._remove(container_id)
            with self._lock:
                self._starting.discard(key)
                self._lock.notify_all()
            return
        with self._lock:
            if not self._closed:
                self._waiting[key] = Standby(container_id, image_id, time.monotonic() + idle - EXPIRY_MARGIN)
                self._starting.discard(key)
                return
        self._remove(container_id)  # the worker stopped meanwhile
        with self._lock:
            self._starting.discard(key)
            self._lock.notify_all()

    def clean_orphans(self, worker: str) -> None:
        """Remove, on a thread, the standbys an earlier life of this worker left (never handed a run); once per
        worker name."""
        with self._lock:
            if worker in self._cleaned:
                return
            self._cleaned.add(worker)
        threading.Thread(target=self._clean, args=(worker,), daemon=True).start()

    def _clean(self, worker: str) -> None:
        with contextlib.suppress(Exception):
            found = self._api.containers(
                all=True, filters={"label": [STANDBY_LABEL, f"{WORKER_LABEL}={worker}"]}
            )
            for summary in found:
                labels = summary.get("Labels") or {}
                names = [str(n).lstrip("/") for n in summary.get("Names") or []]
                if labels.get(INSTANCE_LABEL) != self.instance and any(
                    n.startswith(NAME_PREFIX) for n in names
                ):
                    self._remove(str(summary["Id"]))

    def close(self) -> None:
        """Remove every standby of this executor (the worker stops); none is made after this."""
        with self._lock:
            self._closed = True
            self._waiting.clear()
            # one being made now removes itself once made: wait for that, so a worker process that exits
            # right after this (--run-once) leaves no container behind
            self._lock.wait_for(lambda: not self._starting, timeout=CLOSE_WAIT)
        with contextlib.suppress(Exception):
            for summary in self._api.containers(
                all=True, filters={"label": f"{INSTANCE_LABEL}={self.instance}"}
            ):
                names = [str(n).lstrip("/") for n in summary.get("Names") or []]
                if any(n.startswith(NAME_PREFIX) for n in names):  # renamed ones are runs: left to follow
                    self._remove(str(summary["Id"]))

    def waiting(self) -> dict[str, str]:
        """Key -> container id of the standbys waiting now."""
        with self._lock:
            return {key: standby.id for key, standby in self._waiting.items()}

    def _remove(self, container_id: str) -> None:
        with contextlib.suppress(Exception):
            self._api.remove_container(container_id, force=True)

    def _remove_later(self, container_id: str) -> None:
        threading.Thread(target=self._remove, args=(container_id,), daemon=True).start()
