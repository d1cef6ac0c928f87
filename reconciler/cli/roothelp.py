"""`wp --help` and `wp GROUP --help` rendered from the command tables with rich alone: the same panels, colours
and wrapping as Typer's rich help for a group, without importing Typer's help renderer or any command's module.
Rendered only when `reconciler.cli.helpcache` does not hold the screen for the current settings.

Typer's renderer (`typer.rich_utils`) imports Markdown, tracebacks and pretty-printing that the root help never
shows; with Typer itself it was most of `wp --help`'s time. This module mirrors the parts of that renderer the
root uses: the usage line, the help text, the Options panel and the Commands panel. Must never decide what the
help says: the names and texts come from `reconciler.cli.commands`, and
`tests/cli/test_lazy_commands.py` compares this output with Typer's, plain and in colour, at several widths,
rendered and from the cache.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence

from rich.align import Align
from rich.box import Box
from rich.columns import Columns
from rich.console import Console, Group
from rich.highlighter import RegexHighlighter
from rich.padding import Padding
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from rich.theme import Theme

from reconciler.cli.commands import COMMANDS, ROOT_HELP, SUBCOMMANDS
from reconciler.cli.helpcache import ROOT

# The root's options as Typer lists them: (long names, short names, help).
OPTIONS = (
    ("--version", "", "Print the version and exit."),
    ("--install-completion", "", "Install completion for the current shell."),
    (
        "--show-completion",
        "",
        "Show completion for the current shell, to copy it or customize the installation.",
    ),
    ("--help", "-h", "Show this message and exit."),
)
USAGE = "Usage: wp [OPTIONS] COMMAND [ARGS]..."
# rich's pattern of an emoji code (rich/_emoji_replace.py): a text without one reads the same without the
# emoji pass, which would load rich's table of 4,000 emoji names.
EMOJI_CODE = re.compile(r"(:(\S*?)(?:(?:\-)(emoji|text))?:)")
# A command group's only option
GROUP_OPTIONS = (("--help", "-h", "Show this message and exit."),)

# Typer's styles (typer.rich_utils)
THEME = {
    "option": "bold cyan",
    "switch": "bold green",
    "negative_option": "bold magenta",
    "negative_switch": "bold red",
    "types": "bold yellow",
    "types_sep": "dim",
    "usage": "yellow",
}


class _OptionHighlighter(RegexHighlighter):
    highlights = [
        r"(^|\W)(?P<switch>\-\w+)(?![a-zA-Z0-9])",
        r"(^|\W)(?P<option>\-\-[\w\-]+)(?![a-zA-Z0-9])",
        r"(?P<types>\<[^\>]+\>)",
        r"(?P<usage>Usage: )",
    ]


class _NegativeHighlighter(RegexHighlighter):
    highlights = [
        r"(^|\W)(?P<negative_switch>\-\w+)(?![a-zA-Z0-9])",
        r"(^|\W)(?P<negative_option>\-\-[\w\-]+)(?![a-zA-Z0-9])",
    ]


class _TypesHighlighter(RegexHighlighter):
    highlights = [
        r"^(?P<types_sep>(\[|<))",
        r"(?P<types_sep>\|)",
        r"(?P<types_sep>(\]|>))(\.\.\.)?$",
    ]


def _console() -> Console:
    """Typer's help console, with the environment variables it reads (TERMINAL_WIDTH, FORCE_COLOR, …)."""
    force: bool | None = (
        True if (os.getenv("GITHUB_ACTIONS") or os.getenv("FORCE_COLOR") or os.getenv("PY_COLORS")) else None
    )
    if os.getenv("_TYPER_FORCE_DISABLE_TERMINAL"):
        force = False
    width = os.getenv("TERMINAL_WIDTH")
    return Console(
        theme=Theme(THEME),
        highlighter=_OptionHighlighter(),
        color_system="auto",
        force_terminal=force,
        width=int(width) if width else None,
    )


def _markup(text: str) -> Text:
    """`Text.from_markup` as Typer calls it, with the emoji pass only where it changes something."""
    return Text.from_markup(text, style="", emoji=EMOJI_CODE.search(text) is not None)


def _table(box: Box | None = None) -> Table:
    return Table(
        highlight=False,
        show_header=False,
        expand=True,
        box=box,
        show_lines=False,
        leading=0,
        border_style=None,
        row_styles=None,
        pad_edge=False,
        padding=(0, 1),
    )


def render(screen: str) -> str:
    """The help screen `screen` (ROOT, or a group in `SUBCOMMANDS`) exactly as rich would write it to stdout
    now: the same console, width and colour decisions, captured instead of written."""
    if screen == ROOT:
        return render_help(USAGE, ROOT_HELP, OPTIONS, {name: entry.help for name, entry in COMMANDS.items()})
    usage = f"Usage: wp {screen} [OPTIONS] COMMAND [ARGS]..."
    return render_help(usage, COMMANDS[screen].help, GROUP_OPTIONS, SUBCOMMANDS[screen])


def render_help(
    usage: str, help_text: str, options: Sequence[tuple[str, str, str]], commands: Mapping[str, str]
) -> str:
    console = _console()
    with console.capture() as captured:
        _print_help(console, usage, help_text, options, commands)
    return captured.get()


def _print_help(
    console: Console,
    usage: str,
    help_text: str,
    options: Sequence[tuple[str, str, str]],
    commands: Mapping[str, str],
) -> None:
    option = _OptionHighlighter()
    negative = _NegativeHighlighter()
    types = _TypesHighlighter()

    console.print(Padding(option(usage), 1), style="bold")
    help_group = Group(option(_markup(help_text)))
    console.print(Padding(Align(help_group, pad=False), (0, 1, 1, 1)))

    table = _table()
    table.highlight = True
    for long, short, text in options:
        table.add_row(
            option(long),
            option(short),
            negative(""),
            negative(""),
            types(Text(style="bold yellow", overflow="fold")),
            Columns([option(_markup(text))]),
        )
    console.print(Panel(table, border_style="dim", title=_markup("Options"), title_align="left"))

    listed = _table()
    listed.add_column(style="bold cyan", no_wrap=True, width=max(len(name) for name in commands))
    listed.add_column("Description", justify="left", no_wrap=False, ratio=10)
    for name, text in commands.items():
        listed.add_row(Text(name), option(_markup(text)))
    console.print(Panel(listed, border_style="dim", title=_markup("Commands"), title_align="left"))
