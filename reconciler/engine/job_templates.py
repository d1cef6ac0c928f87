"""The default base job template of each built-in work pool type (`process`, `docker`, `kubernetes`).

Owns which job variables each type exposes (SPEC §1 "Templates and job variables"), their JSON Schemas
(title, description, type, default) and the `job_configuration` their placeholders fill. Pure data: every
call builds a fresh template, so callers can never share or mutate one. Must never do I/O or render anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reconciler.errors import ValidationError

if TYPE_CHECKING:
    from reconciler.model import BaseJobTemplate

# `reconciler.model.PoolType`'s values, spelled out so that `default_template_document` needs no pydantic
# models (tests/engine/test_job_templates.py holds them equal)
PROCESS, DOCKER, KUBERNETES = "process", "docker", "kubernetes"
KNOWN_POOL_TYPES: tuple[str, ...] = (PROCESS, DOCKER, KUBERNETES)

_NULLABLE_STRING: dict[str, Any] = {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}


def _var(title: str, description: str, **schema: Any) -> dict[str, Any]:
    return {"title": title, "description": description, **schema}


def _opt_string(title: str, description: str, **extra: Any) -> dict[str, Any]:
    return _var(title, description, **_NULLABLE_STRING, **extra)


def _common_variables() -> dict[str, dict[str, Any]]:
    """`name, env, labels, command`: every type exposes these four."""
    return {
        "name": _opt_string("Name", "Name given to infrastructure created by a worker."),
        "env": _var(
            "Environment Variables",
            "Environment variables to set when starting a flow run.",
            type="object",
            additionalProperties={"anyOf": [{"type": "string"}, {"type": "null"}]},
        ),
        "labels": _var(
            "Labels",
            "Labels applied to infrastructure created by a worker.",
            type="object",
            additionalProperties={"type": "string"},
        ),
        "command": _opt_string(
            "Command",
            "The command to use when starting a flow run. Leave it blank to let the worker run the "
            "deployment's entrypoint.",
        ),
    }


def _stream_output() -> dict[str, Any]:
    return _var(
        "Stream Output",
        "If enabled, workers stream output from flow run infrastructure to their own standard output.",
        type="boolean",
        default=True,
    )


def _process_variables() -> dict[str, dict[str, Any]]:
    return {
        **_common_variables(),
        "stream_output": _stream_output(),
        "working_dir": _var(
            "Working Directory",
            "The directory flow run processes start in, before their pull steps run. Unset: the directory the "
            "worker was started in.",
            anyOf=[{"type": "string", "format": "path"}, {"type": "null"}],
            default=None,
        ),
    }


def _docker_variables() -> dict[str, dict[str, Any]]:
    return {
        **_common_variables(),
        "stream_output": _stream_output(),
        "working_dir": _opt_string("Working Directory", "The working directory inside the container."),
        "image": _opt_string(
            "Image",
            "The image reference of the container to run the flow in; unset uses the worker's default.",
        ),
        "image_pull_policy": _var(
            "Image Pull Policy",
            "When to pull the image before starting a container.",
            anyOf=[{"enum": ["IfNotPresent", "Always", "Never"], "type": "string"}, {"type": "null"}],
            default=None,
        ),
        "networks": _var(
            "Networks",
            "Docker networks the container is connected to.",
            type="array",
            items={"type": "string"},
            default=[],
        ),
        "network_mode": _opt_string("Network Mode", "The network mode of the container, e.g. `host`."),
        "volumes": _var(
            "Volumes",
            "Volumes to mount, as `host_path:container_path[:mode]`.",
            type="array",
            items={"type": "string"},
            default=[],
        ),
        "auto_remove": _var(
            "Auto Remove", "Remove the container when it exits.", type="boolean", default=False
        ),
        "mem_limit": _opt_string("Memory Limit", "Memory limit of the container, e.g. `512m` or `2g`."),
        "privileged": _var(
            "Privileged", "Give the container extended privileges.", type="boolean", default=False
        ),
    }


def _kubernetes_variables() -> dict[str, dict[str, Any]]:
    def opt_int(title: str, description: str) -> dict[str, Any]:
        return _var(
            title, description, anyOf=[{"type": "integer", "minimum": 0}, {"type": "null"}], default=None
        )

    return {
        **_common_variables(),
        "image": _opt_string("Image", "The image reference of the job's container."),
        "namespace": _var(
            "Namespace", "The Kubernetes namespace to create jobs in.", type="string", default="default"
        ),
        "service_account_name": _opt_string(
            "Service Account Name", "The service account the job's pod runs as."
        ),
        "image_pull_policy": _var(
            "Image Pull Policy",
            "The Kubernetes image pull policy of the job's container.",
            anyOf=[{"enum": ["IfNotPresent", "Always", "Never"], "type": "string"}, {"type": "null"}],
            default="IfNotPresent",
        ),
        "backoff_limit": _var(
            "Backoff Limit",
            "How many times Kubernetes retries the job's pod before marking the job failed.",
            type="integer",
            minimum=0,
            default=0,
        ),
        "cpu_request": _opt_string("CPU Request", "The CPU the container requests, e.g. `500m` or `2`."),
        "cpu_limit": _opt_string("CPU Limit", "The CPU limit of the container."),
        "memory_request": _opt_string("Memory Request", "The memory the container requests, e.g. `1Gi`."),
        "memory_limit": _opt_string("Memory Limit", "The memory limit of the container."),
        "finished_job_ttl": opt_int(
            "Finished Job TTL", "Seconds after which a finished job is deleted by Kubernetes; unset keeps it."
        ),
        "job_watch_timeout_seconds": opt_int(
            "Job Watch Timeout Seconds",
            "Wall-clock limit on the whole run in seconds: past it the job is deleted and the run FAILED; "
            "unset: none.",
        ),
        "pod_watch_timeout_seconds": _var(
            "Pod Watch Timeout Seconds",
            "Seconds the run's pod may take to start: past it the job is deleted and the run CRASHED with the "
            "pod's last reason.",
            type="integer",
            minimum=1,
            default=300,
        ),
    }


def _kubernetes_manifest() -> dict[str, Any]:
    container = {
        "name": "flow-run",
        "image": "{{ image }}",
        "imagePullPolicy": "{{ image_pull_policy }}",
        "args": "{{ command }}",
        "env": "{{ env }}",
        "resources": {
            "requests": {"cpu": "{{ cpu_request }}", "memory": "{{ memory_request }}"},
            "limits": {"cpu": "{{ cpu_limit }}", "memory": "{{ memory_limit }}"},
        },
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"namespace": "{{ namespace }}", "generateName": "{{ name }}-", "labels": "{{ labels }}"},
        "spec": {
            "backoffLimit": "{{ backoff_limit }}",
            "ttlSecondsAfterFinished": "{{ finished_job_ttl }}",
            "parallelism": 1,
            "completions": 1,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": "{{ service_account_name }}",
                    "containers": [container],
                }
            },
        },
    }


def _placeholders_for(names: list[str]) -> dict[str, Any]:
    return {n: "{{ " + n + " }}" for n in names}


def _template(job_configuration: dict[str, Any], properties: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "job_configuration": job_configuration,
        "variables": {"type": "object", "properties": dict(sorted(properties.items()))},
    }


def default_base_job_template(type: str) -> BaseJobTemplate:
    """The template a pool of `type` gets when its config gives none. ValidationError for an unknown type."""
    from reconciler.model import BaseJobTemplate

    return BaseJobTemplate.model_validate(default_template_document(type))


def default_template_document(type: str) -> dict[str, Any]:
    """`default_base_job_template(type).model_dump(mode="json")`, built without the model: the command line
    sends it to a server as it is."""
    if type == PROCESS:
        props = _process_variables()
        return _template(_placeholders_for(list(props)), props)
    if type == DOCKER:
        props = _docker_variables()
        return _template(_placeholders_for(list(props)), props)
    if type == KUBERNETES:
        props = _kubernetes_variables()
        config = {
            **_placeholders_for(
                [
                    "name",
                    "env",
                    "labels",
                    "command",
                    "namespace",
                    "job_watch_timeout_seconds",
                    "pod_watch_timeout_seconds",
                ]
            ),
            "stream_output": True,
            "job_manifest": _kubernetes_manifest(),
        }
        return _template(config, props)
    raise ValidationError(
        f"unknown work pool type {type!r}; expected one of {', '.join(KNOWN_POOL_TYPES)}", path=("type",)
    )
