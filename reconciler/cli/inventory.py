"""Commands that turn live objects into config or explanations: import, export, explain.

`export` and `import` write the config format (wp.yaml's) so that live objects made by hand can be brought under
management; secret values become `${VAR}` references instead of clear text.
"""

from __future__ import annotations

import io
import re
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from reconciler.cli.context import JsonOption, console, fail, open_store, print_json

if TYPE_CHECKING:
    from reconciler.store.base import ApplyProgress


class ExportFormat(StrEnum):
    yaml = "yaml"
    tf = "tf"


def _env_ref(path: list[str]) -> str:
    return "${" + re.sub(r"[^A-Z0-9]+", "_", "_".join(path).upper()).strip("_") + "}"


def _unmask_as_refs(value: Any, path: list[str]) -> Any:
    from reconciler.model import is_secret_key

    if isinstance(value, dict):
        return {
            k: (
                _env_ref([*path, k])
                if is_secret_key(str(k)) and isinstance(v, str)
                else _unmask_as_refs(v, [*path, k])
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_unmask_as_refs(v, path) for v in value]
    return value


def config_document(
    keys: set[str] | None = None,
    *,
    unmanaged_only: bool = False,
    server_defaults: bool = False,
    progress: ApplyProgress | None = None,
) -> dict[str, Any]:
    """The live store as a wp.yaml document; `keys` restricts to those addresses (with their children).
    `server_defaults` keeps the values the store gives by itself (a default queue's description): Terraform
    compares every attribute it manages, so leaving them out would show as a change right after import."""
    from reconciler.engine.job_templates import default_base_job_template
    from reconciler.model import DEFAULT_QUEUE, Deployment, Kind, WorkPool, WorkQueue

    if progress is not None:
        progress("reading the store", 0, 0)
    snapshot = open_store().snapshot()
    if progress is not None:
        progress("building the configuration", 0, len(snapshot.objects))

    def wanted(address: str, owner: str | None) -> bool:
        if unmanaged_only and owner is not None:
            return False
        return keys is None or address in keys

    pools: dict[str, dict[str, Any]] = {}
    deployments: list[dict[str, Any]] = []
    for obj in sorted(snapshot.objects.values(), key=lambda o: (o.key.kind.value, o.key.name)):
        v = obj.value
        if obj.key.kind is Kind.WORK_POOL and isinstance(v, WorkPool) and wanted(obj.key.address, obj.owner):
            doc: dict[str, Any] = {"name": v.name, "type": v.type}
            if v.description:
                doc["description"] = v.description
            if v.concurrency_limit is not None:
                doc["concurrency_limit"] = v.concurrency_limit
            if v.paused:
                doc["paused"] = True
            try:
                default = default_base_job_template(v.type)
            except Exception:
                default = None
            if v.base_job_template is not None and v.base_job_template != default:
                doc["base_job_template"] = v.base_job_template.model_dump(mode="json")
            doc["queues"] = []
            pools[v.name] = doc
    for obj in sorted(snapshot.objects.values(), key=lambda o: o.key.name):
        v = obj.value
        if isinstance(v, WorkQueue) and v.work_pool in pools:
            q: dict[str, Any] = {"name": v.name, "priority": v.priority}
            if v.concurrency_limit is not None:
                q["concurrency_limit"] = v.concurrency_limit
            if v.paused:
                q["paused"] = True
            given = v.name == DEFAULT_QUEUE and (v.description or "").startswith("The work pool")
            if v.description and (server_defaults or not given):
                q["description"] = v.description
            pools[v.work_pool]["queues"].append(q)
        elif isinstance(v, Deployment) and wanted(obj.key.address, obj.owner):
            deployments.append(_deployment_doc(v))
    for doc in pools.values():
        doc["queues"].sort(key=lambda q: q["priority"] or 0)
    if progress is not None:
        progress("building the configuration", len(snapshot.objects), len(snapshot.objects))
    out: dict[str, Any] = {"project": "imported"}
    if pools:
        out["work_pools"] = list(pools.values())
    if deployments:
        out["deployments"] = deployments
    return out


def _deployment_doc(d: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": d.name, "flow": d.flow, "entrypoint": d.entrypoint}
    if d.description:
        doc["description"] = d.description
    if d.parameters:
        doc["parameters"] = _unmask_as_refs(d.parameters, [d.name])
    pool: dict[str, Any] = {}
    if d.work_pool:
        pool["name"] = d.work_pool
    if d.work_queue and d.work_queue != "default":
        pool["work_queue_name"] = d.work_queue
    if d.job_variables:
        pool["job_variables"] = _unmask_as_refs(d.job_variables, [d.name])
    if pool:
        doc["work_pool"] = pool
    if d.schedules:
        doc["schedules"] = [
            {
                k: v
                for k, v in s.model_dump(mode="json").items()
                if v not in (None, {}) and not (k == "day_or" and v)
            }
            for s in d.schedules
        ]
    for field in ("tags", "paused", "concurrency_limit", "version"):
        value = getattr(d, field)
        if value:
            doc[field] = list(value) if field == "tags" else value
    return doc


def dump_yaml(document: dict[str, Any]) -> str:
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.default_flow_style = False
    yaml.width = 120
    buf = io.StringIO()
    yaml.dump(document, buf)
    return buf.getvalue()


def export(
    fmt: ExportFormat = typer.Option(
        ExportFormat.yaml, "--format", help="yaml (wp.yaml) or tf (Terraform HCL)."
    ),
    out: Path | None = typer.Option(None, "--out", help="Write to this file instead of stdout."),
) -> None:
    """Write every live object as configuration (secrets become ${VAR} references)."""
    document = config_document(server_defaults=fmt is ExportFormat.tf)
    if fmt is ExportFormat.tf:
        from reconciler.config.hcl_export import export_tf

        text = export_tf(document)
    else:
        text = dump_yaml(document)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text)
        console.print(f"Wrote {out}")


def import_(
    address: str | None = typer.Argument(
        None, help="The address to import, e.g. work_pool.etl or deployment.f/n."
    ),
    all_: bool = typer.Option(False, "--all", help="Every live object no project manages."),
    out: Path | None = typer.Option(None, "--out", help="Write DIR/imported.yaml instead of printing."),
    json_out: bool = typer.Option(
        False, "--json", help="Print the imported objects as JSON (the config document), not YAML."
    ),
) -> None:
    """Write config for live objects made by hand, so the next apply adopts them into the project."""
    from reconciler.model import Key

    if not address and not all_:
        fail("name an address to import, or pass --all", hint="e.g. wp import work_pool.etl")
    keys: set[str] | None = None
    if address:
        try:
            keys = {Key.parse(address).address}
        except ValueError as exc:
            fail(str(exc))
    from reconciler.cli.progress import progress_bar

    # --all may read and write thousands of objects; one address is quick
    with progress_bar("Importing", json_out=json_out, big=all_) as progress:
        document = config_document(keys, unmanaged_only=all_, progress=progress)
        if not document.get("work_pools") and not document.get("deployments"):
            what = f"{address} not found in the store" if address else "every object in the store is managed"
            fail(f"nothing to import: {what}")
        document.pop("project")
        if progress is not None:
            progress("writing YAML", 0, 0)
        text = dump_yaml(document)
    if out is None:
        if json_out:
            print_json(document)
        else:
            typer.echo(text, nl=False)
        return
    out.mkdir(parents=True, exist_ok=True)
    target = out / "imported.yaml"
    target.write_text(text)
    if json_out:
        print_json({"wrote": str(target), "document": document})
    else:
        console.print(
            f"Wrote {target}. Add it to `include:` in wp.yaml; the next apply adopts these objects."
        )


def explain(
    address: str = typer.Argument(..., help="deployment.FLOW/NAME (or work_pool.NAME)."),
    json_out: bool = JsonOption,
) -> None:
    """Show the job configuration a deployment's runs get, and where each value comes from.

    It is what a worker started in this shell would submit for a scheduled run (its `{{ $VAR }}` and default
    image from this environment); for a Kubernetes pool, `job_manifest` is the exact Job body, with the run's
    id and name as placeholders."""
    import os

    from rich.markup import escape
    from rich.table import Table

    from reconciler.engine.template import effective_variables, explain_job_configuration
    from reconciler.model import Deployment, Key, Kind, mask_secrets
    from reconciler.runtime.executors.base import ExecutorError
    from reconciler.runtime.submission import code_location, preview, preview_deployment

    try:
        key = Key.parse(address)
    except ValueError as exc:
        fail(str(exc))
    store = open_store()
    deployment: Deployment | None = None
    if key.kind is Kind.WORK_POOL:
        pool = store.get_work_pool(key.name)
        title = f"work pool {pool.name} ({pool.type})"
    elif key.kind is Kind.DEPLOYMENT:
        flow, _, name = key.name.partition("/")
        if not flow or not name:
            fail(
                f"{address!r} names no deployment",
                hint="write deployment.FLOW/NAME, e.g. deployment.etl/nightly",
            )
        deployment = store.get_deployment(flow, name)
        pool_name = deployment.work_pool or store.get_default_work_pool()
        if pool_name is None:
            fail(f"{address} names no work pool and no default pool is set")
        pool = store.get_work_pool(pool_name)
        title = (
            f"{address} on work pool {pool.name} ({pool.type}), queue {deployment.work_queue or 'default'}"
        )
    else:
        fail(f"explain takes a deployment or work_pool address, not {key.kind.value}")
    template = pool.base_job_template
    assert template is not None
    job_variables = deployment.job_variables if deployment is not None else {}
    env = dict(os.environ)
    try:
        rendered = preview(pool, deployment, env)
    except ExecutorError as exc:
        fail(f"{address}: a worker could not submit this job: {exc}")
    code = code_location(pool, deployment or preview_deployment(pool), rendered, env)
    sources = explain_job_configuration(template, job_variables, None)
    values = effective_variables(template, job_variables, None)
    patterns = store.secret_patterns()  # the defaults and the patterns applied projects added
    rendered = mask_secrets(rendered, patterns)
    values = mask_secrets(values, patterns)
    if json_out:
        print_json(
            {
                "address": address,
                "job_configuration": rendered,
                "variables": values,
                "sources": sources,
                "code": code,
            }
        )
        return
    import json

    console.print(f"[bold]Rendered job configuration[/bold] of {title}\n")
    console.print(f"Code: {escape(code)}\n", soft_wrap=True)
    table = Table(show_header=True, header_style="bold")
    table.add_column("Variable")
    table.add_column("Value")
    table.add_column("Source")
    colours = {"deployment": "cyan", "run": "magenta", "pool": "white", "default": "dim"}
    for var in sorted(sources):
        value: Any = rendered if sources[var] == "pool" else values  # "pool" = a literal of the template
        for part in var.split("."):
            value = value.get(part, "(unset)") if isinstance(value, dict) else "(unset)"
        value = "(unset)" if value is None else value
        src = sources[var]
        table.add_row(
            var,
            json.dumps(value) if not isinstance(value, str) else value,
            f"[{colours.get(src, 'white')}]{src}[/]",
        )
    console.print(table)
    console.print("\n[bold]job_configuration[/bold]")
    console.print_json(json.dumps(rendered))
