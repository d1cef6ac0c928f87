"""Lazily loaded top-level commands: the root group of `wp` whose commands are built only when asked for.

`wp work-pool ls` imports the work-pool commands and nothing of `plan`, `server` or `sync`: building every
command group and importing its module was half of every command's start-up. The names and the order come from
`reconciler.cli.commands.COMMANDS`; a command is built from its module on first use, through Typer as before, so
its options, help and behaviour are those of the module. Must never hold command definitions itself.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Any

import typer
from typer.core import TyperGroup

from reconciler.cli.coercion import DeferredCoercion, defer_coercion
from reconciler.cli.commands import COMMANDS


def build_command(name: str) -> Any:
    """The click command `wp NAME` runs, built by Typer from its module as if mounted on the root app."""
    entry = COMMANDS[name]
    target = getattr(importlib.import_module(entry.module), entry.attribute)
    # The same Typer settings as the root, so Typer renders the command as it did when mounted there.
    holder = typer.Typer(rich_markup_mode="rich", pretty_exceptions_enable=False, add_completion=False)
    holder.callback()(_no_op)  # always a group, even with one command, so the command is found by name
    if isinstance(target, typer.Typer):
        holder.add_typer(target, name=name)
    else:
        holder.command(name)(target)
    command = typer.main.get_group(holder).commands[name]
    plain_help(command)
    return command


def plain_help(command: Any) -> None:
    """Help as people read it: arguments in capitals (`NAME`, not Typer's `{name}`) and no type column for
    flags (Typer prints `<bool>` beside `--help`). Applied to the subcommands too, but not through the root's
    lazy table, which would build every command. Also defers each parameter's coercion
    (`reconciler.cli.coercion`), as every command passes through here once built."""
    defer_coercion(command)
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
        if option is not None and getattr(option, "_runtime_param", False) is None:
            option._runtime_param = DeferredCoercion()  # made per context: not in `command.params`
        return option

    command.get_help_option = plain_help_option
    subcommands = getattr(command, "commands", None)
    if isinstance(subcommands, dict):
        for sub in subcommands.values():
            plain_help(sub)


def _no_op() -> None:
    """Placeholder callback (see `build_command`)."""


class LazyCommands(Mapping[str, Any]):
    """The root group's `commands`: every name of the table, each command built on first access."""

    def __init__(self) -> None:
        self._built: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in COMMANDS:
            raise KeyError(name)
        if name not in self._built:
            self._built[name] = build_command(name)
        return self._built[name]

    def __iter__(self) -> Iterator[str]:
        return iter(COMMANDS)

    def __len__(self) -> int:
        return len(COMMANDS)


class LazyGroup(TyperGroup):
    """Typer's group with `commands` served from the table (`typer.Typer(cls=LazyGroup)`)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.commands = LazyCommands()  # type: ignore[assignment]  # read-only: nothing adds commands later
