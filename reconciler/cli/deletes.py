"""The imperative deletes (`wp work-pool|work-queue|deployment delete`), made as safe as a plan.

Owns what a delete shows and asks before the store is told: a protected object is refused naming the project
that protects it, a pool or queue that deployments use is refused naming them unless `--cascade` (which says
what it deletes), and every delete asks for confirmation on a terminal (`--yes` skips it; without a terminal
`--yes` is required, as `wp apply` requires `--auto-approve`). The store enforces the same rules for every
client (store/integrity.py); this module only explains them before anything is asked or changed.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import typer

from reconciler.cli.context import EXIT_ERROR, console, err_console, fail, print_json

if TYPE_CHECKING:
    from reconciler.store.base import Store

YesOption = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation.")
CascadeOption = typer.Option(
    False, "--cascade", help="Also delete the deployments that use it (and their waiting runs)."
)


@dataclass
class Doomed:
    """What one delete takes with it, for the question, the refusal and the report."""

    address: str  # the object named on the command line
    what: str  # "work pool prod"
    queues: list[str] = field(default_factory=list)
    deployments: list[str] = field(default_factory=list)  # flow/name
    waiting_runs: int = 0

    @property
    def addresses(self) -> list[str]:
        return [
            self.address,
            *self.queues,
            *(f"deployment.{d}" for d in self.deployments),
        ]

    def describe(self) -> str:
        parts = [self.what]
        if self.queues:
            names = ", ".join(q.rsplit("/", 1)[1] for q in self.queues)
            parts.append(f"its queue{'s' if len(self.queues) != 1 else ''} {names}")
        if self.deployments:
            n = len(self.deployments)
            parts.append(f"{n} deployment{'s' if n != 1 else ''} ({', '.join(self.deployments)})")
        if self.waiting_runs:
            n = self.waiting_runs
            parts.append(f"{n} waiting run{'s' if n != 1 else ''}")
        return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def refuse_protected(protected: dict[str, str | None], doomed: Doomed) -> None:
    """`protected`: address → owning project of the protected objects among those the delete takes."""
    for address in doomed.addresses:
        if address in protected:
            project = protected[address]
            fail(
                f"{address} is protected (`protect: true` in project {project!r}); nothing was deleted",
                hint=f"set `protect: false` on it in project {project!r}'s config and apply it, then delete it",
            )


def refuse_users(doomed: Doomed, cascade: bool, command: str) -> None:
    if doomed.deployments and not cascade:
        n = len(doomed.deployments)
        fail(
            f"{doomed.address} is used by {n} deployment{'s' if n != 1 else ''}: "
            f"{', '.join(doomed.deployments)}; nothing was deleted",
            hint=f"move {'it' if n == 1 else 'them'} elsewhere or delete {'it' if n == 1 else 'them'} first, "
            f"or run `{command} --cascade` to delete {'it' if n == 1 else 'them'} too",
        )


def confirm(doomed: Doomed, yes: bool) -> None:
    """Ask on a terminal; without one, `--yes` is required."""
    if yes:
        return
    if not sys.stdin.isatty():
        fail(
            f"refusing to delete {doomed.what} without confirmation: stdin is not a terminal; nothing was deleted",
            hint="pass --yes",
        )
    if not typer.confirm(f"Delete {doomed.describe()}?", default=False):
        err_console.print("Nothing deleted.")
        raise typer.Exit(EXIT_ERROR)


def report(doomed: Doomed, json_out: bool) -> None:
    if json_out:
        print_json({"deleted": doomed.addresses, "waiting_runs_deleted": doomed.waiting_runs})
    else:
        console.print(f"Deleted {doomed.describe()}.")


WAITING = ("SCHEDULED", "LATE")
_MANY = 10_000  # the API caps a listing there


def _protected(store: Store, doomed: Doomed) -> dict[str, str | None]:
    from reconciler.model import Key

    live = store.snapshot(only=[Key.parse(a) for a in doomed.addresses]).objects
    return {k.address: lo.owner for k, lo in live.items() if lo.protected}


def _waiting(store: Store, *, pool: str | None, queue: str | None, deployments: list[str]) -> int:
    ids: set[str] = set()
    if pool is not None:
        runs = store.list_flow_runs(states=WAITING, work_pool=pool, work_queue=queue, limit=_MANY)
        ids.update(r.id for r in runs)
    for deployment in deployments:
        ids.update(r.id for r in store.list_flow_runs(states=WAITING, deployment=deployment, limit=_MANY))
    return len(ids)


def delete_pool(store: Store, name: str, *, yes: bool, cascade: bool, json_out: bool) -> None:
    from reconciler.model import pool_key, queue_key

    store.get_work_pool(name)  # NotFoundError names it
    doomed = Doomed(
        pool_key(name).address,
        f"work pool {name}",
        queues=[queue_key(name, q.name).address for q in store.list_work_queues(name)],
        deployments=[f"{d.flow}/{d.name}" for d in store.list_deployments(name)],
    )
    refuse_protected(_protected(store, doomed), doomed)
    refuse_users(doomed, cascade, f"wp work-pool delete {name}")
    doomed.waiting_runs = _waiting(store, pool=name, queue=None, deployments=doomed.deployments)
    confirm(doomed, yes)
    store.delete_work_pool(name, cascade=cascade)
    report(doomed, json_out)


def delete_queue(store: Store, pool: str, name: str, *, yes: bool, cascade: bool, json_out: bool) -> None:
    from reconciler.model import queue_key

    store.get_work_queue(pool, name)
    users = [
        f"{d.flow}/{d.name}" for d in store.list_deployments(pool) if (d.work_queue or "default") == name
    ]
    doomed = Doomed(queue_key(pool, name).address, f"work queue {pool}/{name}", deployments=users)
    refuse_protected(_protected(store, doomed), doomed)
    refuse_users(doomed, cascade, f"wp work-queue delete {name} --pool {pool}")
    doomed.waiting_runs = _waiting(store, pool=pool, queue=name, deployments=doomed.deployments)
    confirm(doomed, yes)
    store.delete_work_queue(pool, name, cascade=cascade)
    report(doomed, json_out)


def delete_deployment(store: Store, flow: str, name: str, *, yes: bool, json_out: bool) -> None:
    from reconciler.model import deployment_key

    store.get_deployment(flow, name)
    doomed = Doomed(deployment_key(flow, name).address, f"deployment {flow}/{name}")
    refuse_protected(_protected(store, doomed), doomed)
    doomed.waiting_runs = _waiting(store, pool=None, queue=None, deployments=[f"{flow}/{name}"])
    confirm(doomed, yes)
    store.delete_deployment(flow, name)
    report(doomed, json_out)
