"""Terraform HCL written from wp objects: `wp export --format tf`.

Owns turning a wp.yaml-shaped document into Terraform configuration for the wp provider (a resource and an
`import` block per object, `${VAR}` secret references as sensitive variables), and the names both directions
share: the provider's address, which attributes travel as `jsonencode(...)`, and the flow name the provider
computes from an entrypoint. Reading `*.tf` files is `reconciler.config.hcl`; this half needs no HCL parser.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from reconciler.model import default_flow_name

__all__ = ["JSON_ATTRIBUTES", "PROVIDER_SOURCE", "export_tf", "flow_of"]

PROVIDER_SOURCE = "wp-gitops/wp"
JSON_ATTRIBUTES = frozenset({"base_job_template", "job_variables", "parameters", "pull_steps"})


def flow_of(entrypoint: Any) -> str | None:
    """What the provider computes when `flow` is not set: the entrypoint's function, `_` as `-`."""
    if not isinstance(entrypoint, str) or ":" not in entrypoint:
        return None
    return default_flow_name(entrypoint.rpartition(":")[2])


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_ENV_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")


def _label(name: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_").lower() or "x"
    base = f"r_{base}" if base[0].isdigit() else base
    label, n = base, 2
    while label in taken:
        label, n = f"{base}_{n}", n + 1
    taken.add(label)
    return label


class _Writer:
    """HCL text for values; `${VAR}` secret references become `var.VAR` (sensitive variables)."""

    def __init__(self) -> None:
        self.variables: set[str] = set()

    def value(self, v: Any, indent: int) -> str:
        pad = "  " * indent
        if v is None:
            return "null"
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return json.dumps(v)
        if isinstance(v, str):
            m = _ENV_REF.match(v)
            if m:
                self.variables.add(m.group(1))
                return f"var.{m.group(1)}"
            return self.string(v)
        if isinstance(v, list | tuple):
            if not v:
                return "[]"
            inner = ",\n".join(f"{pad}  {self.value(x, indent + 1)}" for x in v)
            return f"[\n{inner},\n{pad}]"
        if isinstance(v, Mapping):
            if not v:
                return "{}"
            lines = [f"{pad}  {self.key(k)} = {self.value(x, indent + 1)}" for k, x in v.items()]
            return "{\n" + "\n".join(lines) + f"\n{pad}}}"
        raise TypeError(f"cannot write {type(v).__name__} as HCL")

    @staticmethod
    def key(k: Any) -> str:
        k = str(k)
        return k if _IDENT.match(k) and k not in ("null", "true", "false") else _Writer.string(k)

    @staticmethod
    def string(s: str) -> str:
        s = json.dumps(s, ensure_ascii=False)  # quotes, backslashes, control characters
        return s.replace("${", "$${").replace("%{", "%%{")

    def attribute(self, name: str, value: Any, width: int) -> str:
        text = f"jsonencode({self.value(value, 1)})" if name in JSON_ATTRIBUTES else self.value(value, 1)
        return f"  {name.ljust(width)} = {text}"

    def block(self, header: str, attrs: list[tuple[str, Any]]) -> str:
        width = max((len(n) for n, _ in attrs), default=0)
        body = "\n".join(self.attribute(n, v, width) for n, v in attrs)
        return f"{header} {{\n{body}\n}}\n"


def _pool_attrs(pool: Mapping[str, Any]) -> list[tuple[str, Any]]:
    names = ("name", "type", "description", "paused", "concurrency_limit", "base_job_template")
    return [(n, pool[n]) for n in names if pool.get(n) is not None]


def _deployment_attrs(dep: Mapping[str, Any], pools: Mapping[str, str]) -> list[tuple[str, Any]]:
    ref = dep.get("work_pool") or {}
    out: list[tuple[str, Any]] = [
        (n, dep[n]) for n in ("name", "flow", "entrypoint") if dep.get(n) is not None
    ]
    if ref.get("name") is not None:
        pool = ref["name"]
        out.append(("work_pool", _Ref(f"wp_work_pool.{pools[pool]}.name") if pool in pools else pool))
    if ref.get("work_queue_name") is not None:
        out.append(("work_queue", ref["work_queue_name"]))
    if ref.get("job_variables"):
        out.append(("job_variables", ref["job_variables"]))
    for name in ("parameters", "tags", "description", "paused", "concurrency_limit", "version"):
        if dep.get(name) not in (None, {}, []):
            out.append((name, dep[name]))
    if dep.get("pull"):
        out.append(("pull_steps", dep["pull"]))
    if dep.get("schedules"):
        out.append(("schedules", [_schedule_object(s) for s in dep["schedules"]]))
    return out


def _schedule_object(schedule: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in schedule.items() if v is not None and k != "parameters"}
    if schedule.get("parameters"):
        out["parameters"] = _Ref(f"jsonencode({_Writer().value(schedule['parameters'], 3)})")
    return out


class _Ref(str):
    """An expression written as is (a reference or a function call), not as a quoted string."""


class _ExportWriter(_Writer):
    def value(self, v: Any, indent: int) -> str:
        if isinstance(v, _Ref):
            return str(v)
        return super().value(v, indent)


def export_tf(document: Mapping[str, Any]) -> str:
    """A wp.yaml-shaped document (work_pools with queues, deployments) as Terraform configuration, with an
    `import` block per object so that `terraform apply` adopts the live objects instead of creating them."""
    w = _ExportWriter()
    taken: set[str] = set()
    parts: list[str] = []
    imports: list[str] = []
    pools: dict[str, str] = {}
    for pool in document.get("work_pools") or []:
        label = pools[pool["name"]] = _label(pool["name"], taken)
        parts.append(w.block(f'resource "wp_work_pool" "{label}"', _pool_attrs(pool)))
        imports.append(_import("wp_work_pool", label, pool["name"]))
        for queue in pool.get("queues") or []:
            qlabel = _label(f"{pool['name']}_{queue['name']}", taken)
            attrs: list[tuple[str, Any]] = [("work_pool", _Ref(f"wp_work_pool.{label}.name"))]
            attrs += [
                (n, queue[n])
                for n in ("name", "priority", "concurrency_limit", "paused", "description")
                if queue.get(n) is not None
            ]
            parts.append(w.block(f'resource "wp_work_queue" "{qlabel}"', attrs))
            imports.append(_import("wp_work_queue", qlabel, f"{pool['name']}/{queue['name']}"))
    for dep in document.get("deployments") or []:
        label = _label(f"{dep.get('flow') or ''}_{dep['name']}", taken)
        parts.append(w.block(f'resource "wp_deployment" "{label}"', _deployment_attrs(dep, pools)))
        flow = dep.get("flow") or flow_of(dep.get("entrypoint"))
        imports.append(_import("wp_deployment", label, f"{flow}/{dep['name']}"))
    header = _header(document.get("project"))
    variables = [
        f'variable "{name}" {{\n  type      = string\n  sensitive = true\n}}\n'
        for name in sorted(w.variables)
    ]
    return "\n".join([header, *variables, *parts, *imports])


def _import(kind: str, label: str, ident: str) -> str:
    return f"import {{\n  to = {kind}.{label}\n  id = {_Writer.string(ident)}\n}}\n"


def _header(project: Any) -> str:
    project_line = f"  project = {_Writer.string(project)}\n" if isinstance(project, str) else ""
    return (
        "terraform {\n  required_providers {\n"
        f'    wp = {{\n      source = "{PROVIDER_SOURCE}"\n    }}\n'
        "  }\n}\n\n"
        f'provider "wp" {{\n{project_line}}}\n'
    )
