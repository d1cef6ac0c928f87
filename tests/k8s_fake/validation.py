"""How the fake API server checks a request body: as a real API server with strict field validation would.

Structure and types come from the OpenAPI models the official `kubernetes` client ships (pydantic models with
`extra="forbid"` and strict types, validated by their JSON names only): an unknown field, a number where a
string is expected (a resource quantity written as `2`), a missing required field are each refused with the
field's path. On top, the few semantic rules a real server applies to a Job and that a wp manifest could break:
object, label and env names, label values, restart policy of a Job's pods.
"""

from __future__ import annotations

import re
from typing import Any

import pydantic
from kubernetes import client

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


def check_model(body: Any, model: str) -> list[str]:
    """Errors of `body` against the client's model named `model` (e.g. `V1Job`), as `path: message`."""
    cls = getattr(client, model)
    try:
        cls.model_validate(body, by_alias=True, by_name=False)
    except pydantic.ValidationError as exc:
        return [f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()]
    return []


def check_job(body: Any) -> list[str]:
    """Every reason a real API server would refuse this batch/v1 Job."""
    errors = check_model(body, "V1Job")
    if errors:
        return errors
    if body.get("apiVersion") != "batch/v1" or body.get("kind") != "Job":
        errors.append(
            f"apiVersion/kind: expected batch/v1 Job, got {body.get('apiVersion')}/{body.get('kind')}"
        )
    meta = body.get("metadata") or {}
    name = meta.get("name") or ""
    generate = meta.get("generateName") or ""
    if not name and not generate:
        errors.append("metadata.name: Required value: name or generateName is required")
    candidate = name or generate + "abcde"
    if len(candidate) > 63 or not DNS1123_LABEL.match(candidate):
        errors.append(
            f"metadata.name: Invalid value: {candidate!r}: a Job name must be a DNS-1123 label of at most 63 "
            "characters (lower case alphanumerics and '-')"
        )
    errors.extend(_labels("metadata.labels", meta.get("labels")))
    spec = body.get("spec") or {}
    template = spec.get("template") or {}
    errors.extend(_labels("spec.template.metadata.labels", (template.get("metadata") or {}).get("labels")))
    pod = template.get("spec") or {}
    if pod.get("restartPolicy") not in ("Never", "OnFailure"):
        errors.append(
            f"spec.template.spec.restartPolicy: Unsupported value: {pod.get('restartPolicy')!r}: "
            'supported values: "OnFailure", "Never"'
        )
    for i, container in enumerate(pod.get("containers") or []):
        where = f"spec.template.spec.containers[{i}]"
        if not DNS1123_LABEL.match(container.get("name", "")):
            errors.append(f"{where}.name: Invalid value: {container.get('name')!r}: must be a DNS-1123 label")
        if not container.get("image"):
            errors.append(f"{where}.image: Required value")
        for j, env in enumerate(container.get("env") or []):
            if not ENV_NAME.match(env.get("name", "")):
                errors.append(
                    f"{where}.env[{j}].name: Invalid value: {env.get('name')!r}: a valid environment variable name"
                )
    if not pod.get("containers"):
        errors.append("spec.template.spec.containers: Required value")
    return errors


def _labels(where: str, labels: Any) -> list[str]:
    errors = []
    for key, value in (labels or {}).items():
        prefix, _, name = key.rpartition("/")
        if (prefix and not DNS1123_SUBDOMAIN.match(prefix)) or len(name) > 63 or not LABEL_NAME.match(name):
            errors.append(f"{where}: Invalid value: {key!r}: not a valid label key")
        if len(value) > 63 or not LABEL_VALUE.match(value):
            errors.append(
                f"{where}[{key}]: Invalid value: {value!r}: a label value must be at most 63 characters of "
                "alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric"
            )
    return errors
