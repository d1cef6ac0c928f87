"""`wp work-pool …`: imperative commands on work pools. They act on the same store as `wp apply`, so a change made
here shows up in the next plan as drift."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from reconciler.cli.context import JsonOption, console, fail, masking_patterns, now, open_store, print_json
from reconciler.cli.deletes import CascadeOption, YesOption
from reconciler.cli.runs import work_pool_preview

if TYPE_CHECKING:
    from reconciler.store.base import Store

app = typer.Typer(help="Create, inspect and change work pools.", no_args_is_help=True)


def _read_template(path: Path) -> Any:
    from reconciler.engine.template import check_template
    from reconciler.model import BaseJobTemplate

    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        fail(f"{path}: no such file")
    except json.JSONDecodeError as exc:
        fail(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}")
    try:
        template = BaseJobTemplate.model_validate(raw)
    except Exception as exc:
        fail(f"{path}: not a base job template (expected job_configuration and variables): {exc}")
    problems = check_template(template)
    if problems:
        from reconciler.diagnostics import format_path

        lines = "\n".join(f"  {format_path(p.path) or '(root)'}: {p.message}" for p in problems)
        fail(f"{path}: the base job template is invalid:\n{lines}")
    return template


def _document(store: Store, name: str) -> dict[str, Any]:
    """The pool as `WorkPool.model_dump(mode="json")` gives it; from a server, its JSON as it came."""
    from reconciler.store.client import HttpStore

    if isinstance(store, HttpStore):  # no models built: most of the command's time was building them
        return store.work_pool_document(name)
    return store.get_work_pool(name).model_dump(mode="json")


def _documents(store: Store) -> list[dict[str, Any]]:
    from reconciler.store.client import HttpStore

    if isinstance(store, HttpStore):
        return store.work_pool_documents()
    return [pool.model_dump(mode="json") for pool in store.list_work_pools()]


def _view(name: str) -> dict[str, Any]:
    from reconciler.cli.views import pool_view

    store = open_store()
    pool = _document(store, name)
    status = store.work_pool_status(name, now())
    default = store.get_default_work_pool()
    return pool_view(pool, status, masking_patterns(store), is_default=default == name)


def _new_pool(
    name: str,
    type_: str,
    paused: bool,
    description: str | None,
    concurrency_limit: int | None,
    base_job_template: Path | None,
) -> dict[str, Any]:
    """The pool `create` makes, as `WorkPool(...).model_dump(mode="json")` gives it. A name the model accepts
    with a built-in type's default template needs no model; a template file, an unknown type or a name the
    model refuses goes through the model, for its checks and its error."""
    from reconciler.engine.job_templates import KNOWN_POOL_TYPES, default_template_document
    from reconciler.names import check_name

    limit_ok = concurrency_limit is None or concurrency_limit >= 0
    if base_job_template is None and type_ in KNOWN_POOL_TYPES and limit_ok:
        try:
            check_name(name)
        except ValueError:
            pass
        else:  # the model's fields, in its order
            return {
                "name": name,
                "type": type_,
                "description": description,
                "paused": paused,
                "concurrency_limit": concurrency_limit,
                "base_job_template": default_template_document(type_),
            }
    from reconciler.engine.job_templates import default_base_job_template
    from reconciler.model import WorkPool

    template = _read_template(base_job_template) if base_job_template else default_base_job_template(type_)
    pool = WorkPool(
        name=name,
        type=type_,
        paused=paused,
        description=description,
        concurrency_limit=concurrency_limit,
        base_job_template=template,
    )
    return pool.model_dump(mode="json")


@app.command()
def create(
    name: str = typer.Argument(..., help="The pool's name."),
    type_: str = typer.Option("process", "--type", help="process, docker or kubernetes."),
    paused: bool = typer.Option(False, "--paused", help="Create it paused (delivers no work)."),
    set_as_default: bool = typer.Option(False, "--set-as-default", help="Deployments naming no pool use it."),
    base_job_template: Path | None = typer.Option(None, "--base-job-template", help="A JSON template file."),
    description: str | None = typer.Option(None, "--description"),
    concurrency_limit: int | None = typer.Option(None, "--concurrency-limit", min=0),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a pool of the same name."),
    json_out: bool = JsonOption,
) -> None:
    """Create a work pool (and its `default` queue)."""
    pool = _new_pool(name, type_, paused, description, concurrency_limit, base_job_template)
    store = open_store()
    from reconciler.store.client import HttpStore

    if isinstance(store, HttpStore):
        store.create_work_pool_document(pool, overwrite=overwrite)
    else:
        from reconciler.model import WorkPool

        store.create_work_pool(WorkPool.model_validate(pool), overwrite=overwrite)
    if set_as_default:
        store.set_default_work_pool(name)
    if json_out:
        print_json(_view(name))
    else:
        console.print(f"Created work pool [bold]{name}[/bold] ({type_}).")
        console.print(f"Start a worker for it: [bold]wp worker start --pool {name}[/bold]")


@app.command()
def update(
    name: str,
    base_job_template: Path | None = typer.Option(None, "--base-job-template", help="A JSON template file."),
    description: str | None = typer.Option(None, "--description"),
    concurrency_limit: int | None = typer.Option(None, "--concurrency-limit", min=0),
    json_out: bool = JsonOption,
) -> None:
    """Change a pool's template, description or concurrency limit."""
    fields: dict[str, Any] = {}
    if base_job_template is not None:
        fields["base_job_template"] = _read_template(base_job_template)
    if description is not None:
        fields["description"] = description
    if concurrency_limit is not None:
        fields["concurrency_limit"] = concurrency_limit
    if not fields:
        fail("nothing to update", hint="pass --base-job-template, --description or --concurrency-limit")
    open_store().update_work_pool(name, **fields)
    if json_out:
        print_json(_view(name))
    else:
        console.print(f"Updated work pool [bold]{name}[/bold]: {', '.join(fields)}.")


@app.command("ls")
def list_pools(json_out: bool = JsonOption) -> None:
    """List work pools with their status."""
    from reconciler.cli.views import pool_view, pools_table

    store = open_store()
    at = now()
    default = store.get_default_work_pool()
    patterns = masking_patterns(store)
    rows = [
        pool_view(p, store.work_pool_status(p["name"], at), patterns, is_default=p["name"] == default)
        for p in _documents(store)
    ]
    if json_out:
        print_json(rows)
    elif not rows:
        console.print("No work pools. Create one with `wp work-pool create NAME` or `wp apply`.")
    else:
        console.print(pools_table(rows))


@app.command()
def inspect(name: str, json_out: bool = JsonOption) -> None:
    """Show one pool, its template included."""
    view = _view(name)
    if json_out:
        print_json(view)
        return
    console.print_json(json.dumps(view))


def _set(name: str, message: str, json_out: bool, **fields: Any) -> None:
    open_store().update_work_pool(name, **fields)
    if json_out:
        print_json(_view(name))
    else:
        console.print(message)


@app.command()
def pause(name: str, json_out: bool = JsonOption) -> None:
    """Stop delivering work from the pool (its schedules keep producing runs)."""
    _set(name, f"Paused work pool [bold]{name}[/bold].", json_out, paused=True)


@app.command()
def resume(name: str, json_out: bool = JsonOption) -> None:
    """Deliver work from the pool again."""
    _set(name, f"Resumed work pool [bold]{name}[/bold].", json_out, paused=False)


@app.command()
def delete(
    name: str,
    yes: bool = YesOption,
    cascade: bool = CascadeOption,
    json_out: bool = JsonOption,
) -> None:
    """Delete a pool, its queues and workers (refused while deployments use it, unless --cascade)."""
    from reconciler.cli.deletes import delete_pool

    delete_pool(open_store(), name, yes=yes, cascade=cascade, json_out=json_out)


@app.command("set-concurrency-limit")
def set_concurrency_limit(
    name: str, limit: int = typer.Argument(..., min=0), json_out: bool = JsonOption
) -> None:
    """Cap the runs in PENDING, RUNNING or CANCELLING across the pool."""
    message = f"Set the concurrency limit of [bold]{name}[/bold] to {limit}."
    _set(name, message, json_out, concurrency_limit=limit)


@app.command("clear-concurrency-limit")
def clear_concurrency_limit(name: str, json_out: bool = JsonOption) -> None:
    """Remove the pool's concurrency limit."""
    _set(name, f"Cleared the concurrency limit of [bold]{name}[/bold].", json_out, concurrency_limit=None)


@app.command("get-default-base-job-template")
def get_default_base_job_template(
    type_: str = typer.Option(..., "--type", help="process, docker or kubernetes."),
    file: Path | None = typer.Option(None, "--file", help="Write it to this file."),
) -> None:
    """Print the default base job template of a pool type as JSON."""
    from reconciler.engine.job_templates import default_base_job_template

    text = json.dumps(default_base_job_template(type_).model_dump(mode="json"), indent=2) + "\n"
    if file is None:
        typer.echo(text, nl=False)
    else:
        file.write_text(text)
        console.print(f"Wrote {file}")


# Defined with the other runtime commands; listed last, as `wp work-pool --help` always showed it.
app.command("preview")(work_pool_preview)
