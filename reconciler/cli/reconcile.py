"""The reconcile commands: init, validate, plan, apply, destroy, drift, history, force-unlock.

Each is a thin adapter over reconciler.pipeline and reconciler.engine.apply: parse flags, run the pipeline,
render, map the outcome to an exit code.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from reconciler.cli.context import (
    EXIT_CHANGES,
    EXIT_OK,
    JsonOption,
    actor,
    confirm_or_exit,
    console,
    environ,
    err_console,
    fail,
    keep_until_exit,
    now,
    open_store,
    print_diagnostics,
    print_json,
)
from reconciler.cli.noop import Stores, is_project, known_noop, remember

if TYPE_CHECKING:
    from reconciler.engine.plan import Plan
    from reconciler.pipeline import PlanOutcome
    from reconciler.shortcut import KnownNoop
    from reconciler.store.base import ApplyRecord, Store


class PlanFormat(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"


DirArg = typer.Argument(Path("."), help="The project directory (holds wp.yaml).", show_default=True)
TargetOpt = typer.Option(
    [], "--target", help="Limit the plan to this address (repeatable), e.g. work_pool.k8s."
)
PruneOpt = typer.Option(
    None,
    "--prune/--no-prune",
    help="Delete managed objects no longer declared (default: the config's `prune:`).",
)
MassDeleteOpt = typer.Option(
    False, "--allow-mass-delete", help="Allow a plan that deletes over half the objects."
)
FormatOpt = typer.Option(PlanFormat.text, "--format", help="Output format.")
CompactOpt = typer.Option(
    None,
    "--compact/--full",
    help="A count per kind and action instead of every change (default: compact above 100 changes).",
    show_default=False,
)
RefreshOpt = typer.Option(
    False,
    "--refresh",
    help="Always read the project and every live object. Without it, a project whose files, environment "
    "variables and store are unchanged since a plan or apply found nothing to do prints No changes at once.",
)
LockTimeoutOpt = typer.Option(
    0.0, "--lock-timeout", help="Seconds to wait for the apply lock.", show_default=True
)


NO_DRIFT = "[green]No drift.[/green] The live objects match the configuration and the last apply."


def _plan_or_exit(
    directory: Path,
    store: Store,
    *,
    prune: bool | None = None,
    targets: list[str] | None = None,
    destroy: bool = False,
    allow_mass_delete: bool = False,
    watch_inputs: bool = False,
) -> PlanOutcome:
    from reconciler.pipeline import plan_project

    if not is_project(directory):
        fail(
            f"{directory}/wp.yaml not found", hint="run `wp init` to create a project, or pass its directory"
        )
    outcome = plan_project(
        directory,
        store,
        env=environ(),
        now=now(),
        prune=prune,
        targets=targets or (),
        destroy=destroy,
        allow_mass_delete=allow_mass_delete,
        watch_inputs=watch_inputs,
    )
    keep_until_exit(outcome)
    if outcome.diagnostics:
        print_diagnostics(outcome.diagnostics)
    if outcome.plan is None:
        raise typer.Exit(1)
    return outcome


def _emit_noop(known: KnownNoop, fmt: PlanFormat, compact: bool | None) -> None:
    """What _render prints for a plan with no changes (engine/render_noop.py), without building one."""
    from reconciler.engine.render_noop import noop_compact, noop_markdown, noop_text

    if fmt is PlanFormat.markdown:
        _emit(noop_markdown(known.project))
    elif compact:
        _emit(noop_compact())
    else:
        _emit(noop_text(color=console.is_terminal))


def _render(plan: Plan, fmt: PlanFormat, compact: bool | None = False) -> str:
    """`compact`: True / False as asked; None decides by size (more than COMPACT_ABOVE changes)."""
    from reconciler.engine.render import (
        COMPACT_ABOVE,
        render_compact,
        render_json,
        render_markdown,
        render_text,
    )

    if fmt is PlanFormat.json:
        return render_json(plan)
    if fmt is PlanFormat.markdown:
        return render_markdown(plan)
    if compact or (compact is None and len(plan.actionable) > COMPACT_ABOVE):
        return render_compact(plan)
    return render_text(plan, color=console.is_terminal)


def _emit(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


def init(directory: Path = typer.Argument(Path("."), help="Where to create the project.")) -> None:
    """Create a starter project: wp.yaml with one process pool and one deployment, and its flow."""
    from reconciler.cli.scaffold import write_starter_project

    created = write_starter_project(directory)
    for path in created:
        console.print(f"[green]created[/green] {path}")
    console.print(f"\nNext: [bold]wp plan {directory}[/bold] then [bold]wp apply {directory}[/bold]")


def validate(directory: Path = DirArg, json_out: bool = JsonOption) -> None:
    """Check the configuration: schema, names, references, templates, job variables, entrypoints."""
    from reconciler.diagnostics import has_errors
    from reconciler.pipeline import load_and_check

    if not is_project(directory):
        fail(
            f"{directory}/wp.yaml not found", hint="run `wp init` to create a project, or pass its directory"
        )
    loaded = load_and_check(directory, environ(), open_store().snapshot())
    failed = has_errors(loaded.diagnostics)
    if json_out:
        print_json({"valid": not failed, "diagnostics": [d.to_json() for d in loaded.diagnostics]})
    else:
        print_diagnostics(loaded.diagnostics)
        if not failed and loaded.desired is not None:
            d = loaded.desired
            counts = [
                _count(len(d.pools), "work pool"),
                _count(len(d.queues), "queue"),
                _count(len(d.deployments), "deployment"),
            ]
            console.print(
                f"[green]The configuration is valid:[/green] {', '.join(counts)} "
                f"in {_count(len(loaded.files), 'file')}."
            )
    raise typer.Exit(1 if failed else 0)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def plan(
    directory: Path = DirArg,
    out: Path | None = typer.Option(
        None, "--out", help="Write the plan as JSON to this file, for `wp apply FILE`."
    ),
    prune: bool | None = PruneOpt,
    target: list[str] = TargetOpt,
    allow_mass_delete: bool = MassDeleteOpt,
    fmt: PlanFormat = FormatOpt,
    detailed_exitcode: bool = typer.Option(
        False, "--detailed-exitcode", help="Exit 2 when there are changes."
    ),
    compact: bool | None = CompactOpt,
    refresh: bool = RefreshOpt,
) -> None:
    """Show what apply would change: the config against the live store."""
    stores = Stores()
    # The JSON form and a plan file list every object, which only the full path reads.
    if not (refresh or target or out is not None or fmt is PlanFormat.json):
        known = known_noop(directory, stores, prune)
        if known is not None:
            _emit_noop(known, fmt, compact)
            return
    from reconciler.engine.render import render_json

    store = stores()
    outcome = _plan_or_exit(
        directory, store, prune=prune, targets=target, allow_mass_delete=allow_mass_delete, watch_inputs=True
    )
    assert outcome.plan is not None
    _emit(_render(outcome.plan, fmt, compact))
    if not outcome.plan.has_changes and outcome.snapshot is not None:
        remember(directory, store, outcome, prune, outcome.snapshot.revision)
    if out is not None:
        out.write_text(render_json(outcome.plan) + "\n")
        if fmt is PlanFormat.text:
            console.print(
                f"\nSaved the plan to: {out}\nTo perform exactly these actions, run: wp apply {out}"
            )
    if detailed_exitcode and outcome.plan.has_changes:
        raise typer.Exit(EXIT_CHANGES)


def apply(
    target_path: Path = typer.Argument(
        Path("."), help="A project directory, or a plan file from `wp plan --out`."
    ),
    auto_approve: bool = typer.Option(False, "--auto-approve", help="Apply without asking."),
    prune: bool | None = PruneOpt,
    target: list[str] = TargetOpt,
    allow_mass_delete: bool = MassDeleteOpt,
    lock_timeout: float = LockTimeoutOpt,
    json_out: bool = JsonOption,
    compact: bool | None = CompactOpt,
    refresh: bool = RefreshOpt,
) -> None:
    """Apply the configuration (or exactly a saved plan) in one transaction."""
    stores = Stores()
    known = None if (refresh or target or target_path.is_file()) else known_noop(target_path, stores, prune)
    if known is not None:
        if not json_out:
            _emit_noop(known, PlanFormat.text, compact)
        _nothing_to_apply(json_out)
        return
    store = stores()
    if target_path.is_file():
        _apply(
            store,
            _saved_plan(target_path, store),
            lock_timeout=lock_timeout,
            json_out=json_out,
            source=target_path,
        )
        return
    outcome = _plan_or_exit(
        target_path,
        store,
        prune=prune,
        targets=target,
        allow_mass_delete=allow_mass_delete,
        watch_inputs=True,
    )
    assert outcome.plan is not None
    plan_obj = outcome.plan
    if not json_out:
        _emit(_render(plan_obj, PlanFormat.text, compact))
    if plan_obj.has_changes:
        confirm_or_exit("Do you want to perform these actions?", auto_approve)
    base = outcome.snapshot.revision if outcome.snapshot is not None else None
    record = _apply(
        store, plan_obj, lock_timeout=lock_timeout, json_out=json_out, source=target_path, base_revision=base
    )
    remember(target_path, store, outcome, prune, record.revision if record is not None else base)


def _saved_plan(path: Path, store: Store) -> Plan:
    from reconciler.engine.apply import load_plan_file, resolve_saved_plan

    try:
        saved = load_plan_file(path.read_text())
    except KeyError as exc:
        fail(f"{path} is not a wp plan file: it has no {exc}", hint="make one with `wp plan --out FILE`")
    except (ValueError, TypeError, AttributeError) as exc:  # not JSON, or JSON of another shape
        fail(f"{path} is not a wp plan file: {exc}", hint="make one with `wp plan --out FILE`")

    def replan(p: Plan) -> Plan:
        if not p.source_dir or not Path(p.source_dir).is_dir():
            fail(
                f"the plan holds secrets and its configuration directory {p.source_dir!r} is not here",
                hint="apply it from the checkout it was made in",
            )
        outcome = _plan_or_exit(
            Path(p.source_dir),
            store,
            prune=p.prune,
            targets=list(p.targets),
            destroy=p.destroy,
            allow_mass_delete=True,
        )
        assert outcome.plan is not None
        return outcome.plan

    return resolve_saved_plan(saved, replan)


def _nothing_to_apply(json_out: bool) -> None:
    if json_out:
        print_json({"applied": False, "summary": {"add": 0, "change": 0, "destroy": 0}})
    else:
        console.print("[green]No changes.[/green] Nothing to apply.")


def _apply(
    store: Store,
    plan_obj: Plan,
    *,
    lock_timeout: float,
    json_out: bool,
    source: Path,
    base_revision: int | None = None,
) -> ApplyRecord | None:
    """Apply and report; the history record, or None when there was nothing to apply."""
    if not plan_obj.has_changes:
        _nothing_to_apply(json_out)
        return None
    from reconciler.cli.progress import BIG_PLAN, progress_bar
    from reconciler.engine.apply import apply_plan
    from reconciler.gitops.repo import repo_facts

    repo_dir = Path(plan_obj.source_dir) if plan_obj.source_dir else source
    big = len(plan_obj.actionable) >= BIG_PLAN
    verb = "Destroying" if plan_obj.destroy else "Applying"
    with progress_bar(verb, json_out=json_out, big=big) as progress:
        record = apply_plan(
            store,
            plan_obj,
            actor=actor(),
            repo=repo_facts(repo_dir),
            lock_timeout=lock_timeout,
            base_revision=base_revision,
            progress=progress,
            notice=lambda message: err_console.print(message, markup=False, highlight=False),
        )
    s = plan_obj.summary
    if json_out:
        print_json({"applied": True, "summary": dict(record.summary), "history_id": record.id})
    else:
        done = "Destroy complete!" if plan_obj.destroy else "Apply complete!"
        console.print(
            f"[bold green]{done}[/bold green] Resources: {s.add} added, {s.change} changed, "
            f"{s.destroy} destroyed."
        )
    return record


def destroy(
    directory: Path = DirArg,
    auto_approve: bool = typer.Option(False, "--auto-approve", help="Destroy without asking."),
    lock_timeout: float = LockTimeoutOpt,
    json_out: bool = JsonOption,
) -> None:
    """Delete every object this project manages (objects made by hand or by other projects are kept)."""
    store = open_store()
    outcome = _plan_or_exit(directory, store, destroy=True, allow_mass_delete=True)
    assert outcome.plan is not None
    if not json_out:
        _emit(_render(outcome.plan, PlanFormat.text))
    if outcome.plan.has_changes:
        confirm_or_exit("Do you really want to destroy all objects of this project?", auto_approve)
    _apply(store, outcome.plan, lock_timeout=lock_timeout, json_out=json_out, source=directory)


def drift(
    directory: Path = DirArg,
    json_out: bool = JsonOption,
    detailed_exitcode: bool = typer.Option(False, "--detailed-exitcode", help="Exit 2 when drift is found."),
    refresh: bool = RefreshOpt,
) -> None:
    """List objects changed outside wp since the last apply, and what the config would change back."""
    stores = Stores()
    if not refresh and known_noop(directory, stores, None) is not None:
        if json_out:
            print_json({"drift": [], "pending_changes": []})
        else:
            console.print(NO_DRIFT)
        return
    from reconciler.engine.plan import change_to_json

    store = stores()
    outcome = _plan_or_exit(directory, store, watch_inputs=True)
    assert outcome.plan is not None
    plan_obj = outcome.plan
    if not plan_obj.has_changes and outcome.snapshot is not None:
        remember(directory, store, outcome, None, outcome.snapshot.revision)
    drifted = plan_obj.drift
    if json_out:
        print_json(
            {
                "drift": [change_to_json(c, plan_obj.secret_patterns) for c in drifted],
                "pending_changes": [change_to_json(c, plan_obj.secret_patterns) for c in plan_obj.actionable],
            }
        )
    elif not drifted and not plan_obj.has_changes:
        console.print(NO_DRIFT)
    else:
        _emit(_render(plan_obj, PlanFormat.text))
    if detailed_exitcode and (drifted or plan_obj.has_changes):
        raise typer.Exit(EXIT_CHANGES)


def history(
    project: str | None = typer.Option(None, "--project", help="Only this project's applies."),
    limit: int = typer.Option(20, "--limit", help="How many records."),
    json_out: bool = JsonOption,
) -> None:
    """List recorded applies: time, actor, project, git commit and branch, summary."""
    from rich.table import Table

    records = open_store().list_history(project, limit)
    if json_out:
        print_json(
            [
                {
                    "id": r.id,
                    "time": r.time.isoformat() if r.time else None,
                    "actor": r.actor,
                    "project": r.project,
                    "git_commit": r.git_commit,
                    "git_branch": r.git_branch,
                    "git_dirty": r.git_dirty,
                    "plan_hash": r.plan_hash,
                    "git_author": r.git_author,
                    "git_message": r.git_message,
                    "summary": dict(r.summary),
                }
                for r in records
            ]
        )
        return
    if not records:
        console.print("No applies recorded yet.")
        return
    table = Table(title="Apply history", title_justify="left")
    for col in ("#", "Time", "Project", "Actor", "Commit", "Branch", "+", "~", "-"):
        table.add_column(col)
    for r in records:
        commit = (r.git_commit or "")[:10] + ("[yellow]*[/yellow]" if r.git_dirty else "")
        table.add_row(
            str(r.id),
            r.time.strftime("%Y-%m-%d %H:%M:%S") if r.time else "",
            r.project,
            r.actor,
            commit,
            r.git_branch or "",
            str(r.summary.get("add", 0)),
            str(r.summary.get("change", 0)),
            str(r.summary.get("destroy", 0)),
        )
    console.print(table)


def force_unlock(
    lock_id: str = typer.Argument(..., help="The lock id that the failed apply printed."),
) -> None:
    """Break a stale apply lock."""
    lock = open_store().force_unlock(lock_id)
    console.print(f"Lock {lock.id} held by {lock.holder} ({lock.operation}) has been released.")
    raise typer.Exit(EXIT_OK)
