"""The `wp` command: the Typer app and the mapping of outcomes to exit codes.

Exit codes everywhere: 0 success / no changes, 1 error, 2 changes present (with --detailed-exitcode),
3 stale plan or lock held. Errors are one clear line on stderr, never a traceback.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import typer

from reconciler.cli import ci, context, deployments, inventory, pools, queues, reconcile, scheduler, sync
from reconciler.cli.context import err_console

app = typer.Typer(
    name="wp",
    help="Work pools as code: declare work pools, queues, job templates and deployments; plan, apply, run.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)
reconcile.register(app)
inventory.register(app)
ci.register(app)
app.add_typer(pools.app, name="work-pool")
app.add_typer(queues.app, name="work-queue")
app.add_typer(deployments.app, name="deployment")
sync.register(app)


def _mount_runtime() -> None:
    """Runtime commands (server, scheduler, worker, runs) live in their own modules."""
    scheduler.register(app)
    try:
        from reconciler.cli import runs
    except ImportError:
        return
    runs.register(app, pools=pools.app, queues=queues.app, deployments=deployments.app)
    try:
        from reconciler.cli import server
    except ImportError:
        return
    app.add_typer(server.app, name="server")


_mount_runtime()


def _print_version(value: bool) -> None:
    # An option callback, not the group callback: the group callback only runs once a command is given.
    if value:
        # The distribution's version: right even when an editable install sees `reconciler` as a namespace.
        from importlib.metadata import version

        typer.echo(f"wp {version('wp-gitops')}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", help="Print the version and exit.", is_eager=True, callback=_print_version
    ),
) -> None:
    """Work pools as code."""


def _refused_value(exc: Exception) -> str | None:
    """A value from the command line that a model refuses (`wp work-pool create a/b`) is the user's error:
    say which field and why, never "internal error"."""
    from pydantic import ValidationError

    if not isinstance(exc, ValidationError):
        return None
    problems = [
        f"{'.'.join(str(part) for part in e['loc']) or exc.title}: {e['msg'].removeprefix('Value error, ')}"
        for e in exc.errors()
    ]
    return "invalid value: " + "; ".join(problems)


def main() -> None:
    """The console script: `run`, then, when a command left large values for the exit to free
    (`context.keep_until_exit`), leave at once. Only commands with no threads or children still working
    keep values, so nothing is cut short."""
    code: int | str | None = 0
    try:
        run()
    except SystemExit as exc:
        code = exc.code
    if not context.kept():
        sys.exit(code)
    if isinstance(code, str):  # sys.exit("message") prints it and exits 1
        print(code, file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


def _base_named(cls: type, name: str) -> type[Exception]:
    return next(c for c in cls.__mro__ if c.__name__ == name)


def _plain_help(command: Any) -> None:
    """Help as people read it: arguments in capitals (`NAME`, not Typer's `{name}`) and no type column for
    flags (Typer prints `<bool>` beside `--help`)."""
    for param in command.params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
        elif param.param_type_name == "argument":
            if param.metavar is None:
                param.metavar = param.name.upper()
            shown = param.metavar if param.required else f"[{param.metavar}]"
            shown += "..." if param.nargs != 1 else ""
            if hasattr(param, "_usage_display_name"):  # Typer's own usage writes `{NAME}`
                param._usage_display_name = lambda shown=shown: shown
    help_option = command.get_help_option

    def plain_help_option(ctx: Any) -> Any:
        option = help_option(ctx)
        if option is not None and option.metavar is None:
            option.metavar = ""
        return option

    command.get_help_option = plain_help_option
    for sub in getattr(command, "commands", {}).values():
        _plain_help(sub)


def _invoke() -> int:
    """Run the Typer app outside click's standalone mode, so that this module, not click, maps usage errors to
    exit codes: click exits 2 on a usage error, the code `--detailed-exitcode` uses for "changes present"; a
    typo in a CI step must read as an error (1), never as a plan with changes."""
    # Typer may vendor click: take its exception classes from a public name rather than `import click`.
    usage_error = _base_named(typer.BadParameter, "UsageError")
    click_exception = _base_named(typer.BadParameter, "ClickException")
    command = typer.main.get_command(app)
    _plain_help(command)
    try:
        code = command(prog_name="wp", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort as exc:
        if isinstance(exc.__cause__, KeyboardInterrupt):
            raise KeyboardInterrupt from None
        return context.EXIT_ERROR
    except click_exception as exc:
        code = context.EXIT_ERROR if isinstance(exc, usage_error) else int(getattr(exc, "exit_code", 1))
        if context.json_errors():
            kind = "UsageError" if isinstance(exc, usage_error) else type(exc).__name__
            context.print_json_error(kind, exc.format_message())  # type: ignore[attr-defined]
            return code
        from typer import rich_utils

        rich_utils.rich_format_error(exc)  # type: ignore[arg-type]
        return code
    return code if isinstance(code, int) else 0


def run() -> None:
    """Run one `wp` command line (tests call this in-process; the console script calls `main`)."""
    from reconciler.errors import ConfigError, WpError

    context.forget_kept()
    try:
        sys.exit(_invoke())
    except ConfigError as exc:
        from reconciler.cli.context import print_diagnostics

        if context.json_errors():
            diagnostics = [d.to_json() for d in exc.diagnostics]
            context.print_json_error("ConfigError", exc.message, diagnostics=diagnostics)
            sys.exit(exc.exit_code)
        print_diagnostics(exc.diagnostics)
        sys.exit(exc.exit_code)
    except WpError as exc:
        from rich.markup import escape

        if context.json_errors():
            context.print_json_error(type(exc).__name__, exc.message)
            sys.exit(exc.exit_code)

        err_console.print(f"[bold red]Error:[/bold red] {escape(exc.message)}")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("Interrupted.")
        sys.exit(130)
    except Exception as exc:  # a bug, not a user error: one line, the traceback only on request
        refusal = _refused_value(exc)
        if refusal is not None and context.json_errors():
            context.print_json_error("ValidationError", refusal)
            sys.exit(1)
        if refusal is not None:
            from rich.markup import escape

            err_console.print(f"[bold red]Error:[/bold red] {escape(refusal)}")
            sys.exit(1)
        import traceback

        if os.environ.get("WP_DEBUG"):
            traceback.print_exc()
        err_console.print(
            f"[bold red]Internal error:[/bold red] {type(exc).__name__}: {exc}\n"
            "  This is a bug in wp. Run again with WP_DEBUG=1 for the traceback, and please report it."
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
