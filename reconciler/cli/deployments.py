"""`wp deployment …`: list, inspect, pause, resume and delete deployments."""

from __future__ import annotations

import json

import typer

from reconciler.cli.context import JsonOption, console, fail, masking_patterns, open_store, print_json
from reconciler.cli.deletes import YesOption
from reconciler.cli.runs import deployment_run

app = typer.Typer(help="List, inspect, run and change deployments.", no_args_is_help=True)


def split_address(value: str) -> tuple[str, str]:
    """`FLOW/NAME` (a `deployment.` prefix is accepted)."""
    value = value.removeprefix("deployment.")
    flow, sep, name = value.partition("/")
    if not sep or not flow or not name:
        fail(f"{value!r} is not FLOW/NAME", hint="e.g. wp deployment inspect etl/nightly")
    return flow, name


@app.command("ls")
def list_deployments(
    pool: str | None = typer.Option(None, "--pool", help="Only deployments of this work pool."),
    json_out: bool = JsonOption,
) -> None:
    """List deployments."""
    from reconciler.cli.views import deployment_view, deployments_table

    store = open_store()
    patterns = masking_patterns(store)
    rows = [deployment_view(d, patterns) for d in store.list_deployments(pool)]
    if json_out:
        print_json(rows)
    elif not rows:
        console.print("No deployments.")
    else:
        console.print(deployments_table(rows))


@app.command()
def inspect(address: str = typer.Argument(..., metavar="FLOW/NAME"), json_out: bool = JsonOption) -> None:
    """Show one deployment."""
    from reconciler.cli.views import deployment_view

    flow, name = split_address(address)
    store = open_store()
    view = deployment_view(store.get_deployment(flow, name), masking_patterns(store))
    if json_out:
        print_json(view)
    else:
        console.print_json(json.dumps(view))


def _set_paused(address: str, paused: bool, json_out: bool) -> None:
    from reconciler.cli.views import deployment_view

    flow, name = split_address(address)
    store = open_store()
    updated = store.update_deployment(flow, name, paused=paused)
    if json_out:
        print_json(deployment_view(updated, masking_patterns(store)))
    else:
        console.print(f"{'Paused' if paused else 'Resumed'} deployment [bold]{flow}/{name}[/bold].")


@app.command()
def pause(address: str = typer.Argument(..., metavar="FLOW/NAME"), json_out: bool = JsonOption) -> None:
    """Stop the deployment's schedules from producing runs."""
    _set_paused(address, True, json_out)


@app.command()
def resume(address: str = typer.Argument(..., metavar="FLOW/NAME"), json_out: bool = JsonOption) -> None:
    """Let the deployment's schedules produce runs again."""
    _set_paused(address, False, json_out)


@app.command()
def delete(
    address: str = typer.Argument(..., metavar="FLOW/NAME"),
    yes: bool = YesOption,
    json_out: bool = JsonOption,
) -> None:
    """Delete a deployment, its schedules and its waiting runs (refused while a run of it is in flight)."""
    from reconciler.cli.deletes import delete_deployment

    flow, name = split_address(address)
    delete_deployment(open_store(), flow, name, yes=yes, json_out=json_out)


# Defined with the other runtime commands; listed last, as `wp deployment --help` always showed it.
app.command("run")(deployment_run)
