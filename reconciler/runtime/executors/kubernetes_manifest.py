"""The Job a Kubernetes run becomes: the rendered `job_manifest` made into a batch/v1 Job an API server accepts.

Owns the pure step between the rendered job configuration and the API: the namespace (the manifest's, else
the configuration's, else `default`), a valid `generateName` (a DNS-1123 label prefix taken from the
configured name or the run's name), the wp labels (`wp.io/flow-run-id`, `wp.io/flow-run-name`,
`wp.io/deployment`, `wp.io/work-pool`, `wp.io/work-queue`, `wp.io/worker`, values made valid label values;
the exact names go in annotations) plus the template's labels (values made valid label values, an invalid key
refused) on the Job and its pod template, the container's image (the worker's default when none is set, as for
Docker), its `env` as a list of `{name, value}` (from a mapping or a list, every value text, `valueFrom` kept)
with the runner's variables added, `args`/`command` as lists, resource quantities as text, `restartPolicy: Never` when unset, and the
run's timeouts as annotations so a worker that re-attaches knows them.

`job_body` is the one function that makes the body: the executor submits it and `wp explain` prints it.

Must never do I/O: no API calls, no clock, no environment.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from reconciler.runtime.executors.base import ExecutorError, Job
from reconciler.runtime.executors.container import (
    CREDENTIAL_ENV,
    default_image,
    runner_command,
    runner_env,
)

LABEL = "wp.io/"
RUN_ID_LABEL = LABEL + "flow-run-id"
POD_WATCH_ANNOTATION = LABEL + "pod-watch-timeout-seconds"
JOB_WATCH_ANNOTATION = LABEL + "job-watch-timeout-seconds"
DEFAULT_POD_WATCH_TIMEOUT = 300.0
MAX_NAME_PREFIX = 57  # a Job name is a DNS-1123 label of at most 63 characters; the server adds 5 + "-"
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")


def label_value(text: str) -> str:
    """`text` as a valid label value: at most 63 alphanumerics, `-`, `_`, `.`, alphanumeric at both ends."""
    value = re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:63]
    return value.strip("-_.")


def name_prefix(text: str) -> str:
    """`text` as the start of a Job name (a DNS-1123 label), always non-empty."""
    prefix = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:MAX_NAME_PREFIX].strip("-")
    return prefix or "wp-flow-run"


def wp_labels(job: Job) -> dict[str, str]:
    run = job.run
    return {
        RUN_ID_LABEL: label_value(run.id),
        LABEL + "flow-run-name": label_value(run.name),
        LABEL + "deployment": label_value(run.deployment),
        LABEL + "work-pool": label_value(run.work_pool),
        LABEL + "work-queue": label_value(run.work_queue),
        LABEL + "worker": label_value(job.worker_name),
    }


def timeout_of(value: Any, field: str, default: float | None) -> float | None:
    if value is None or value == "":
        return default
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ExecutorError(f"{field} must be a number of seconds, not {value!r}")
    try:
        seconds = float(value)
    except ValueError:
        raise ExecutorError(f"{field} must be a number of seconds, not {value!r}") from None
    if seconds <= 0:
        raise ExecutorError(f"{field} must be positive, not {value!r}")
    return seconds


def env_list(env: Any, where: str) -> list[dict[str, Any]]:
    """A container's env as Kubernetes wants it: a list of `{name, value}` (or `valueFrom`), values as text."""
    if env is None:
        return []
    if isinstance(env, Mapping):
        return [{"name": str(k), "value": _text(v)} for k, v in env.items() if v is not None]
    if isinstance(env, list):
        out = []
        for i, item in enumerate(env):
            if not isinstance(item, Mapping) or "name" not in item:
                raise ExecutorError(f"{where}[{i}] must be a mapping with a `name`, not {item!r}")
            entry = dict(item)
            if "value" in entry:
                if entry["value"] is None:
                    continue
                entry["value"] = _text(entry["value"])
            out.append(entry)
        return out
    raise ExecutorError(f"{where} must be a mapping or a list of {{name, value}}, not {env!r}")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _argv(value: Any, where: str) -> list[str] | None:
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, str):
        return shlex.split(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ExecutorError(f"{where} must be a string or a list of strings, not {value!r}")


def _quantities(resources: Any) -> dict[str, Any] | None:
    if not isinstance(resources, Mapping):
        return None
    out: dict[str, Any] = {}
    for kind in ("requests", "limits", "claims"):
        values = resources.get(kind)
        if kind == "claims" and values:
            out[kind] = values
        elif isinstance(values, Mapping):
            kept = {str(k): _quantity(v) for k, v in values.items() if v is not None and v != ""}
            if kept:
                out[kind] = kept
    return out or None


def _quantity(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def job_body(job: Job) -> dict[str, Any]:
    """The batch/v1 Job a worker submits for `job`: the container runner's command and environment, API
    credentials withheld. The executor submits it; `wp explain` shows it."""
    return build_job(job, runner_command(), runner_env(job), withheld=CREDENTIAL_ENV)


def build_job(
    job: Job,
    runner_command: Sequence[str],
    runner_env: Mapping[str, str],
    withheld: Sequence[str] = (),
) -> dict[str, Any]:
    """The batch/v1 Job body for `job`; ExecutorError naming the field when the configuration cannot be one.
    Env entries named in `withheld` (API credentials) never reach the pod, whatever the template says."""
    config = job.configuration
    raw = config.get("job_manifest")
    if not isinstance(raw, Mapping):
        raise ExecutorError(
            "the job configuration has no `job_manifest` mapping: a kubernetes pool's base job template must "
            "render one (see `wp work-pool get-default-base-job-template --type kubernetes`)"
        )
    manifest: dict[str, Any] = copy.deepcopy(dict(raw))
    manifest.setdefault("apiVersion", "batch/v1")
    manifest.setdefault("kind", "Job")
    meta = manifest.setdefault("metadata", {})
    if not isinstance(meta, dict):
        raise ExecutorError("job_manifest.metadata must be a mapping")
    meta["namespace"] = str(meta.get("namespace") or config.get("namespace") or "default")
    if meta.get("name"):
        meta["name"] = name_prefix(str(meta["name"]))
    else:
        configured = str(meta.get("generateName") or "").rstrip("-") or str(
            config.get("name") or job.run.name
        )
        meta["generateName"] = name_prefix(configured) + "-"
    labels = {
        **_labels(config.get("labels"), "labels"),
        **_labels(meta.get("labels"), "job_manifest.metadata.labels"),
        **wp_labels(job),
    }
    meta["labels"] = labels
    pod_watch = timeout_of(
        config.get("pod_watch_timeout_seconds"), "pod_watch_timeout_seconds", DEFAULT_POD_WATCH_TIMEOUT
    )
    job_watch = timeout_of(config.get("job_watch_timeout_seconds"), "job_watch_timeout_seconds", None)
    meta["annotations"] = {
        **_str_map(meta.get("annotations")),
        LABEL + "flow-run-name": job.run.name,
        LABEL + "deployment": job.run.deployment,
        LABEL + "work-pool": job.run.work_pool,
        LABEL + "work-queue": job.run.work_queue,
        POD_WATCH_ANNOTATION: _quantity(pod_watch),
        **({JOB_WATCH_ANNOTATION: _quantity(job_watch)} if job_watch is not None else {}),
    }
    spec = manifest.setdefault("spec", {})
    template = spec.setdefault("template", {})
    tmeta = template.setdefault("metadata", {})
    tmeta["labels"] = {
        **_labels(tmeta.get("labels"), "job_manifest.spec.template.metadata.labels"),
        **labels,
    }
    pod = template.setdefault("spec", {})
    pod.setdefault("restartPolicy", "Never")
    containers = pod.get("containers")
    if not isinstance(containers, list) or not containers or not isinstance(containers[0], dict):
        raise ExecutorError("job_manifest.spec.template.spec.containers must list at least one container")
    _fill_container(containers[0], config, runner_command, runner_env, withheld, job.worker_env)
    return manifest


def _fill_container(
    container: dict[str, Any],
    config: Mapping[str, Any],
    runner_command: Sequence[str],
    runner_env: Mapping[str, str],
    withheld: Sequence[str],
    worker_env: Mapping[str, str],
) -> None:
    where = "job_manifest.spec.template.spec.containers[0]"
    container.setdefault("name", "flow-run")
    if not container.get("image"):
        container["image"] = default_image(worker_env)
    env = env_list(container.get("env", config.get("env")), f"{where}.env")
    names = set(runner_env) | set(withheld)
    container["env"] = [e for e in env if e["name"] not in names] + [
        {"name": k, "value": v} for k, v in runner_env.items()
    ]
    command = _argv(container.get("command"), f"{where}.command")
    args = _argv(container.get("args"), f"{where}.args")
    if command is None and args is None:
        # no command of the user's: the runner runs the deployment's entrypoint and reports on stdout
        container["command"] = list(runner_command)
        container.pop("args", None)
    else:
        for key, value in (("command", command), ("args", args)):
            if value is None:
                container.pop(key, None)
            else:
                container[key] = value
    resources = _quantities(container.get("resources"))
    if resources is None:
        container.pop("resources", None)
    else:
        container["resources"] = resources


def _labels(value: Any, where: str) -> dict[str, str]:
    """Labels of the template made ones a server accepts: values as valid label values; a key that cannot be
    one is refused (changing it would break the selectors that use it)."""
    labels = _str_map(value)
    for key in labels:
        prefix, _, name = key.rpartition("/")
        if (prefix and not DNS1123_SUBDOMAIN.match(prefix)) or len(name) > 63 or not LABEL_NAME.match(name):
            raise ExecutorError(
                f"{where}: {key!r} is not a valid Kubernetes label key (an optional DNS subdomain and `/`, then "
                "at most 63 alphanumerics, `-`, `_` or `.`, alphanumeric at both ends)"
            )
    return {k: label_value(v) for k, v in labels.items()}


def _str_map(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): _text(v) for k, v in value.items() if v is not None}
