"""The JSON shapes of SPEC §4 (`--json` listings and inspects) and the rich tables that show the same objects.

Field names are the config's; secrets are masked in every view.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rich.table import Table

from reconciler.secret_keys import mask_secrets

if TYPE_CHECKING:
    from reconciler.model import Deployment, WorkQueue


def pool_view(
    pool: Mapping[str, Any], status: str | None, patterns: tuple[str, ...], *, is_default: bool = False
) -> dict[str, Any]:
    """`pool` as `WorkPool.model_dump(mode="json")` gives it (a server's JSON is in that form)."""
    data = dict(pool)
    data["base_job_template"] = mask_secrets(data.get("base_job_template"), patterns)
    data["status"] = status
    data["is_default"] = is_default
    return data


def queue_view(queue: WorkQueue, status: str | None) -> dict[str, Any]:
    data = queue.model_dump(mode="json")
    data["status"] = status
    return data


def deployment_view(deployment: Deployment, patterns: tuple[str, ...]) -> dict[str, Any]:
    data = deployment.model_dump(mode="json")
    data["job_variables"] = mask_secrets(data["job_variables"], patterns)
    data["parameters"] = mask_secrets(data["parameters"], patterns)
    data["address"] = deployment.key.address
    return data


def _paused(paused: bool) -> str:
    return "[yellow]paused[/yellow]" if paused else ""


def _status(status: str | None) -> str:
    colour = {"READY": "green", "ONLINE": "green", "PAUSED": "yellow", "NOT_READY": "dim", "OFFLINE": "red"}
    return f"[{colour.get(status or '', 'white')}]{status or '-'}[/]"


def pools_table(rows: Sequence[dict[str, Any]]) -> Table:
    table = Table(title="Work pools", title_justify="left")
    for col in ("Name", "Type", "Status", "Concurrency limit", "Paused", "Description"):
        table.add_column(col)
    for r in rows:
        name = r["name"] + (" [dim](default)[/dim]" if r.get("is_default") else "")
        limit = "∞" if r["concurrency_limit"] is None else str(r["concurrency_limit"])
        table.add_row(
            name, r["type"], _status(r["status"]), limit, _paused(r["paused"]), r["description"] or ""
        )
    return table


def queues_table(pool: str, rows: Sequence[dict[str, Any]]) -> Table:
    table = Table(title=f"Work queues of {pool}", title_justify="left")
    for col in ("Priority", "Name", "Status", "Concurrency limit", "Paused", "Description"):
        table.add_column(col)
    for r in rows:
        limit = "∞" if r["concurrency_limit"] is None else str(r["concurrency_limit"])
        table.add_row(
            str(r["priority"]),
            r["name"],
            _status(r["status"]),
            limit,
            _paused(r["paused"]),
            r["description"] or "",
        )
    return table


def deployments_table(rows: Sequence[dict[str, Any]]) -> Table:
    table = Table(title="Deployments", title_justify="left")
    for col in ("Deployment", "Entrypoint", "Pool / queue", "Schedules", "Paused", "Tags"):
        table.add_column(col)
    for r in rows:
        schedules = ", ".join(s["slug"] + ("" if s["active"] else " (inactive)") for s in r["schedules"])
        table.add_row(
            f"{r['flow']}/{r['name']}",
            r["entrypoint"],
            f"{r['work_pool'] or '(default)'} / {r['work_queue'] or 'default'}",
            schedules,
            _paused(r["paused"]),
            ", ".join(r["tags"]),
        )
    return table
