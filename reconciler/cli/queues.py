"""`wp work-queue …`: imperative commands on work queues (priority shifting as SPEC §1 says)."""

from __future__ import annotations

import json
from typing import Any

import typer

from reconciler.cli.context import JsonOption, console, now, open_store, print_json
from reconciler.cli.deletes import CascadeOption, YesOption
from reconciler.cli.runs import work_queue_preview

app = typer.Typer(help="Create, inspect and change work queues.", no_args_is_help=True)
PoolOpt = typer.Option(..., "--pool", "-p", help="The work pool.")


def _view(pool: str, name: str) -> dict[str, Any]:
    from reconciler.cli.views import queue_view

    store = open_store()
    return queue_view(store.get_work_queue(pool, name), store.work_queue_status(pool, name, now()))


@app.command()
def create(
    name: str,
    pool: str = PoolOpt,
    priority: int | None = typer.Option(
        None, "--priority", min=1, help="1 = highest. Default: the first free after the highest."
    ),
    limit: int | None = typer.Option(None, "--limit", min=0, help="Concurrency limit."),
    description: str | None = typer.Option(None, "--description"),
    json_out: bool = JsonOption,
) -> None:
    """Create a queue; a taken priority shifts the queues at and after it down to the next gap."""
    from reconciler.model import WorkQueue

    store = open_store()
    before = {q.name: q.priority for q in store.list_work_queues(pool)} if priority is not None else {}
    queue = store.create_work_queue(
        WorkQueue(
            work_pool=pool, name=name, priority=priority, concurrency_limit=limit, description=description
        )
    )
    if json_out:
        print_json(_view(pool, name))
        return
    console.print(f"Created work queue [bold]{pool}/{name}[/bold] with priority {queue.priority}.")
    if before:  # a taken priority shifts others down: say so, nobody expects `default` to move silently
        after = {q.name: q.priority for q in store.list_work_queues(pool)}
        for moved in sorted((n for n in before if before[n] != after.get(n)), key=lambda n: after[n] or 0):
            console.print(f"Moved {moved} from priority {before[moved]} to {after[moved]}.")


@app.command("ls")
def list_queues(
    pool: str | None = typer.Option(
        None, "--pool", "-p", help="Only this pool's queues (default: every pool)."
    ),
    json_out: bool = JsonOption,
) -> None:
    """List queues in priority order, of one pool or of every pool."""
    from reconciler.cli.views import queue_view, queues_table

    store = open_store()
    at = now()
    pools = [pool] if pool is not None else [p.name for p in store.list_work_pools()]
    by_pool = {
        name: [
            queue_view(q, store.work_queue_status(name, q.name, at))
            for q in sorted(store.list_work_queues(name), key=lambda q: q.priority or 0)
        ]
        for name in pools
    }
    if json_out:
        print_json([row for rows in by_pool.values() for row in rows])
    elif not by_pool:
        console.print("No work pools. Create one with `wp work-pool create NAME` or `wp apply`.")
    else:
        for name, rows in by_pool.items():
            console.print(queues_table(name, rows))


@app.command()
def inspect(name: str, pool: str = PoolOpt, json_out: bool = JsonOption) -> None:
    """Show one queue."""
    view = _view(pool, name)
    if json_out:
        print_json(view)
    else:
        console.print_json(json.dumps(view))


def _set(pool: str, name: str, message: str, json_out: bool, **fields: Any) -> None:
    open_store().update_work_queue(pool, name, **fields)
    if json_out:
        print_json(_view(pool, name))
    else:
        console.print(message)


@app.command()
def pause(name: str, pool: str = PoolOpt, json_out: bool = JsonOption) -> None:
    """Stop delivering work from this queue."""
    _set(pool, name, f"Paused work queue [bold]{pool}/{name}[/bold].", json_out, paused=True)


@app.command()
def resume(name: str, pool: str = PoolOpt, json_out: bool = JsonOption) -> None:
    """Deliver work from this queue again (NOT_READY until a worker polls it)."""
    _set(pool, name, f"Resumed work queue [bold]{pool}/{name}[/bold].", json_out, paused=False)


@app.command()
def delete(
    name: str,
    pool: str = PoolOpt,
    yes: bool = YesOption,
    cascade: bool = CascadeOption,
    json_out: bool = JsonOption,
) -> None:
    """Delete a queue (never the pool's `default` queue; refused while deployments use it, unless --cascade)."""
    from reconciler.cli.deletes import delete_queue
    from reconciler.model import DEFAULT_QUEUE

    if name == DEFAULT_QUEUE:
        open_store().delete_work_queue(pool, name)  # refused by the store, with the reason
    delete_queue(open_store(), pool, name, yes=yes, cascade=cascade, json_out=json_out)


@app.command("set-concurrency-limit")
def set_concurrency_limit(
    name: str, limit: int = typer.Argument(..., min=0), pool: str = PoolOpt, json_out: bool = JsonOption
) -> None:
    """Cap the queue's runs in PENDING, RUNNING or CANCELLING."""
    message = f"Set the concurrency limit of [bold]{pool}/{name}[/bold] to {limit}."
    _set(pool, name, message, json_out, concurrency_limit=limit)


@app.command("clear-concurrency-limit")
def clear_concurrency_limit(name: str, pool: str = PoolOpt, json_out: bool = JsonOption) -> None:
    """Remove the queue's concurrency limit."""
    message = f"Cleared the concurrency limit of [bold]{pool}/{name}[/bold]."
    _set(pool, name, message, json_out, concurrency_limit=None)


# Defined with the other runtime commands; listed last, as `wp work-queue --help` always showed it.
app.command("preview")(work_queue_preview)
