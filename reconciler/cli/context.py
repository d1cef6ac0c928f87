"""What every command shares: consoles, the store chosen by environment, the clock, printing diagnostics and JSON,
and mapping outcomes to exit codes (0 ok, 1 error, 2 changes present, 3 stale plan or lock held).

Heavy imports (pydantic models, SQLAlchemy) happen inside functions so that `wp --help` starts fast.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console

if TYPE_CHECKING:
    from reconciler.diagnostics import Diagnostic
    from reconciler.store.base import Store

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_STALE = 3


def _width() -> int | None:
    """Piped output (CI logs, files) gets 120 columns instead of rich's 80, so tables stay readable."""
    if os.environ.get("COLUMNS") or sys.stdout.isatty():
        return None
    return 120


console = Console(highlight=False, width=_width())
# soft_wrap: an error line is never broken at the console width, so it stays whole in CI logs and for grep.
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

JsonOption = typer.Option(False, "--json", help="Print only JSON on stdout.")


# Values left for the process exit to free (see keep_until_exit).
_KEPT: list[object] = []


def keep_until_exit(value: object) -> None:
    """Leave `value` for the process exit: the console script then leaves without freeing it (`main.main`).
    Freeing a 10,000-deployment plan, its snapshot and its config, a million small objects, took a tenth of
    `wp plan`; the operating system reclaims the memory at once."""
    _KEPT.append(value)


def kept() -> bool:
    return bool(_KEPT)


def forget_kept() -> None:
    _KEPT.clear()


def now() -> datetime:
    return datetime.now(UTC)


def environ() -> dict[str, str]:
    return dict(os.environ)


def open_store() -> Store:
    from reconciler.store.open import open_store as _open

    return _open(os.environ)


def masking_patterns(store: Store) -> tuple[str, ...]:
    """The key patterns a view masks secrets by: the defaults and those applied projects added. A server
    masked what it sent by them already, so it is not asked again (a round trip on every command)."""
    from reconciler.secret_keys import DEFAULT_SECRET_PATTERNS
    from reconciler.store.client import HttpStore

    return DEFAULT_SECRET_PATTERNS if isinstance(store, HttpStore) else store.secret_patterns()


def json_errors() -> bool:
    """Whether this command line asked for JSON (`--json`): then errors are JSON on stderr too."""
    return "--json" in sys.argv[1:]


def print_json_error(type_: str, message: str, **extra: Any) -> None:
    """`{"error": {"type", "message", ...}}` on stderr, one document, for scripts that asked for --json."""
    body = {"type": type_, "message": message, **{k: v for k, v in extra.items() if v is not None}}
    sys.stderr.write(json.dumps({"error": body}, default=str) + "\n")


def fail(message: str, code: int = EXIT_ERROR, hint: str | None = None) -> NoReturn:
    if json_errors():
        from rich.text import Text

        print_json_error("Error", Text.from_markup(message).plain, hint=hint)
        raise typer.Exit(code)
    err_console.print(f"[bold red]Error:[/bold red] {message}")
    if hint:
        err_console.print(f"  {hint}")
    raise typer.Exit(code)


def print_json(value: Any) -> None:
    """JSON only, on stdout, never wrapped or coloured."""
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=False, default=str) + "\n")


def print_diagnostics(diagnostics: Sequence[Diagnostic]) -> None:
    from reconciler.diagnostics import Severity

    errors = 0
    for d in diagnostics:
        colour = "red" if d.severity is Severity.ERROR else "yellow"
        errors += d.severity is Severity.ERROR
        head = f"{d.location}: " if d.location else ""
        at = f" [dim](at {d.field_path})[/dim]" if d.path else ""
        err_console.print(
            f"{head}[bold {colour}]{d.severity.value}[/bold {colour}]: {_escape(d.summary)}{at}"
        )
        for line in d.detail.splitlines():
            err_console.print(f"    {_escape(line)}")
    if errors:
        err_console.print(
            f"[bold red]{errors} error{'s' if errors != 1 else ''}[/bold red] in the configuration."
        )


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def confirm_or_exit(question: str, auto_approve: bool) -> None:
    """Ask on a terminal; refuse without --auto-approve when nobody can answer."""
    if auto_approve:
        return
    if not sys.stdin.isatty():
        fail("refusing to apply without confirmation: stdin is not a terminal", hint="pass --auto-approve")
    answer = typer.prompt(f"{question} Only 'yes' will be accepted", default="", show_default=False)
    if answer.strip() != "yes":
        err_console.print("Apply cancelled.")
        raise typer.Exit(EXIT_ERROR)


def actor() -> str:
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        user = "unknown"
    return f"{user}@{socket.gethostname()}"
