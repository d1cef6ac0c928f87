"""The `wp` command: the Typer app and the mapping of outcomes to exit codes.

Exit codes everywhere: 0 success / no changes, 1 error, 2 changes present (with --detailed-exitcode),
3 stale plan or lock held. Errors are one clear line on stderr, never a traceback.
"""

from __future__ import annotations

import os
import sys

# Nothing heavy at import: `wp --help` is printed from the command table without Typer (see `run`), and any
# other command line imports Typer and only the module of the command it names (`reconciler.cli.lazy`).
# Not even typing or functools, which a cached `wp --help` never needs (mypy reads this name as typing's).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

HELP_ARGS: tuple[list[str], ...] = ([], ["--help"], ["-h"])
# Set by the shell's completion script, whose argv is empty: that is not a request for the help.
COMPLETE_VAR = "_WP_COMPLETE"


def _group_help(argv: list[str]) -> bool:
    """Whether `argv` asks for a command group's help, `wp GROUP --help`."""
    from reconciler.cli.commands import SUBCOMMANDS

    return len(argv) == 2 and argv[1] in ("--help", "-h") and argv[0] in SUBCOMMANDS


def _print_version(value: bool) -> None:
    # An option callback, not the group callback: the group callback only runs once a command is given.
    if value:
        # The distribution's version: right even when an editable install sees `reconciler` as a namespace.
        from importlib.metadata import version

        import typer

        typer.echo(f"wp {version('wp-gitops')}")
        raise typer.Exit(0)


_app: list[Any] = []  # build_app's one app, once built


def build_app() -> Any:
    """The root Typer app; its commands come from `reconciler.cli.commands.COMMANDS`, each built when chosen.
    Built once per process."""
    if _app:
        return _app[0]
    import typer

    from reconciler.cli.commands import ROOT_HELP
    from reconciler.cli.lazy import LazyGroup

    app = typer.Typer(
        name="wp",
        cls=LazyGroup,
        help=ROOT_HELP,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode="rich",
        context_settings={"help_option_names": ["-h", "--help"]},
    )

    @app.callback()
    def _root(
        version: bool = typer.Option(
            False, "--version", help="Print the version and exit.", is_eager=True, callback=_print_version
        ),
    ) -> None:
        """Work pools as code."""

    _app.append(app)
    return app


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
    context = sys.modules.get("reconciler.cli.context")  # not imported when only the help was printed
    if context is None or not context.kept():
        sys.exit(code)
    if isinstance(code, str):  # sys.exit("message") prints it and exits 1
        print(code, file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


def _base_named(cls: type, name: str) -> type[Exception]:
    return next(c for c in cls.__mro__ if c.__name__ == name)


def _invoke() -> int:
    """Run the Typer app outside click's standalone mode, so that this module, not click, maps usage errors to
    exit codes: click exits 2 on a usage error, the code `--detailed-exitcode` uses for "changes present"; a
    typo in a CI step must read as an error (1), never as a plan with changes."""
    import typer

    from reconciler.cli import context
    from reconciler.cli.lazy import plain_help

    # Typer may vendor click: take its exception classes from a public name rather than `import click`.
    usage_error = _base_named(typer.BadParameter, "UsageError")
    click_exception = _base_named(typer.BadParameter, "ClickException")
    command = typer.main.get_command(build_app())
    plain_help(command)  # the root's own options; each command gets it when it is built
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
    if sys.argv[1:] in HELP_ARGS and COMPLETE_VAR not in os.environ:
        # `wp --help` (and `wp`, which prints the help and exits 1) without Typer or any command's module
        from reconciler.cli import helpcache

        helpcache.show(helpcache.ROOT)
        if sys.argv[1:]:
            sys.stdout.write("\n")  # click ends `--help` with a blank line, a bare `wp` without
        sys.exit(0 if sys.argv[1:] else 1)
    if _group_help(sys.argv[1:]) and COMPLETE_VAR not in os.environ:
        # `wp work-pool --help`, likewise without Typer or the group's module
        from reconciler.cli import helpcache

        helpcache.show(sys.argv[1])
        sys.stdout.write("\n")
        sys.exit(0)

    from reconciler.cli import context
    from reconciler.cli.context import err_console
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
