"""The lazily loaded command line: every command in the table resolves to the command its module defines,
`wp --help` printed from the table is exactly what Typer prints for the real commands, and a command loads
only what it uses (checked on the modules a real `wp` process ends with, not on timings)."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from wp_cli import ISOLATED, Wp
from wp_server import running_server

from reconciler.cli import main as cli_main
from reconciler.cli.commands import COMMANDS, ROOT_HELP, SUBCOMMANDS
from reconciler.cli.lazy import build_command


def _first_paragraph(text: str | None) -> str:
    return inspect.cleandoc(text or "").split("\n\n")[0]


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_listed_command_resolves_to_its_module_with_the_listed_help(name: str, wp: Wp) -> None:
    command = build_command(name)
    assert command.name == name
    assert _first_paragraph(command.short_help or command.help) == COMMANDS[name].help
    # and `wp NAME --help` works through the lazy root, showing that help
    shown = wp(name, "--help")
    assert shown.code == 0, shown.stderr
    assert " ".join(COMMANDS[name].help.split()) in " ".join(shown.stdout.replace("│", " ").split())


def test_the_table_lists_every_command_group_and_nothing_else_is_mounted() -> None:
    """A module that grows a Typer group no table entry names would be unreachable: list them all."""
    import importlib

    import typer

    mounted = {(entry.module, entry.attribute) for entry in COMMANDS.values()}
    for module_name in {entry.module for entry in COMMANDS.values()}:
        module = importlib.import_module(module_name)
        for attribute, value in vars(module).items():
            if isinstance(value, typer.Typer):
                assert (module_name, attribute) in mounted, (
                    f"{module_name}.{attribute} is in no COMMANDS entry"
                )


def _typer_root_help(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> str:
    """The root help (or a group's) as Typer renders it from the real (lazily built) commands."""
    monkeypatch.setattr(sys, "argv", ["wp", *argv])
    capsys.readouterr()
    cli_main._invoke()
    return capsys.readouterr().out


def _fast_path(
    argv: list[str],
    code: int,
    cache: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> list[str]:
    """The help `wp ARGV` prints on the fast path, twice: rendered by rich (and cached under `cache`), then
    shown from that cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.setattr(sys, "argv", ["wp", *argv])
    shown = []
    for _ in range(2):
        with pytest.raises(SystemExit) as exited:
            cli_main.run()
        assert exited.value.code == code
        shown.append(capsys.readouterr().out)
        assert any((cache / "wp" / "help").iterdir())  # the first run cached it
    return shown


def _terminal(width: int, colour: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """A terminal `width` columns wide, in colour or not, for Typer's help and ours alike."""
    from typer import rich_utils

    for variable in (
        "GITHUB_ACTIONS",
        "FORCE_COLOR",
        "PY_COLORS",
        "_TYPER_FORCE_DISABLE_TERMINAL",
        "COLUMNS",
    ):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("TERMINAL_WIDTH", str(width))
    monkeypatch.setattr(rich_utils, "MAX_WIDTH", width)
    if colour:
        monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setattr(rich_utils, "FORCE_TERMINAL", True if colour else None)


@pytest.mark.parametrize("width", [60, 80, 132])
@pytest.mark.parametrize("colour", [False, True])
def test_root_help_from_the_table_is_what_typer_prints(
    width: int,
    colour: bool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _terminal(width, colour, monkeypatch)

    for argv, code in ((["--help"], 0), ([], 1)):  # a bare `wp` prints the help too, and exits 1
        expected = _typer_root_help(argv, monkeypatch, capsys)
        for ours in _fast_path(argv, code, tmp_path, monkeypatch, capsys):
            assert ours == expected
            assert ("\x1b[" in ours) is colour
            assert ROOT_HELP.split()[0] in ours and all(name in ours for name in COMMANDS)


def test_the_subcommand_table_lists_every_group_and_its_commands_as_typer_builds_them() -> None:
    import typer

    groups = {name for name in COMMANDS if hasattr(build_command(name), "commands")}
    assert set(SUBCOMMANDS) == groups
    for group, listed in SUBCOMMANDS.items():
        command = build_command(group)
        ctx = typer.Context(command)
        shown = [name for name in command.list_commands(ctx) if not command.get_command(ctx, name).hidden]
        assert list(listed) == shown, f"SUBCOMMANDS[{group!r}] must list {shown}"
        for name in shown:
            sub = command.get_command(ctx, name)
            assert listed[name] == _first_paragraph(sub.short_help or sub.help).strip(), (group, name)
            assert not getattr(sub, "rich_help_panel", None)  # one Commands panel, as printed
        assert _first_paragraph(command.help) == COMMANDS[group].help
        assert [p.name for p in command.params] == [] and not command.epilog  # only --help, as printed


@pytest.mark.parametrize("width", [60, 80, 132])
@pytest.mark.parametrize("colour", [False, True])
@pytest.mark.parametrize("group", list(SUBCOMMANDS))
def test_group_help_from_the_table_is_what_typer_prints(
    group: str,
    width: int,
    colour: bool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _terminal(width, colour, monkeypatch)

    for flag in ("--help", "-h"):
        expected = _typer_root_help([group, flag], monkeypatch, capsys)
        for ours in _fast_path([group, flag], 0, tmp_path, monkeypatch, capsys):
            assert ours == expected
            assert ("\x1b[" in ours) is colour
            assert all(name in ours for name in SUBCOMMANDS[group])


def test_help_and_bare_wp_keep_their_exit_codes(wp: Wp) -> None:
    helped = wp("--help")
    assert helped.code == 0 and "Commands" in helped.stdout
    assert wp("-h").stdout == helped.stdout
    bare = wp()
    assert bare.code == 1 and bare.stdout + "\n" == helped.stdout  # as Typer printed them


@pytest.mark.parametrize(
    ("shell", "words", "expected"),
    [
        ("complete_bash", {"COMP_WORDS": "wp work-p", "COMP_CWORD": "1"}, "work-pool"),
        (
            "complete_zsh",
            {"_TYPER_COMPLETE_ARGS": "wp work-pool l"},
            '"ls":"List work pools with their status."',
        ),
    ],
)
def test_shell_completion_finds_lazily_loaded_commands(
    shell: str, words: dict[str, str], expected: str, wp_process: Wp
) -> None:
    result = wp_process(env={"_WP_COMPLETE": shell, **words})
    assert result.code == 0, result.stderr
    assert expected in result.stdout and "Usage" not in result.stdout


def test_a_mistyped_command_is_still_suggested(wp: Wp) -> None:
    result = wp("wrk-pool", "ls")
    assert result.code == 1
    assert "No such command 'wrk-pool'" in result.stderr and "work-pool" in result.stderr


# ------------------------------------------------------------------------------- what a real process loads

# Runs the `wp` command line in WP_ARGV as the console script does and writes, at exit, the modules it loaded.
PROBE = """
import atexit, json, os, sys
def _report():
    with open(os.environ["PROBE_OUT"], "w") as out:
        json.dump(sorted(sys.modules), out)
atexit.register(_report)
sys.argv = ["wp", *json.loads(os.environ["WP_ARGV"])]
from reconciler.cli.main import main
main()
"""

OTHER_COMMANDS = (
    "reconciler.cli.reconcile",
    "reconciler.cli.inventory",
    "reconciler.cli.ci",
    "reconciler.cli.sync",
    "reconciler.cli.server",
    "reconciler.cli.scheduler",
)
SERVER_SIDE = (
    "sqlalchemy",
    "alembic",
    "fastapi",
    "starlette",
    "uvicorn",
    "reconciler.api.app",
    "reconciler.store.sql",
)


def _loaded(tmp_path: Path, *argv: str, env: dict[str, str] | None = None) -> tuple[set[str], str]:
    out = tmp_path / f"modules-{time.monotonic_ns()}.json"
    full = {k: v for k, v in os.environ.items() if k not in ISOLATED}
    full.update(WP_HOME=str(tmp_path / "home"), WP_ARGV=json.dumps(argv), PROBE_OUT=str(out), **(env or {}))
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=full, capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(out.read_text())), done.stdout


def _absent(loaded: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in loaded if any(m == n or m.startswith(n + ".") for n in names))


def test_help_loads_neither_typer_nor_any_command(tmp_path: Path) -> None:
    loaded, stdout = _loaded(tmp_path, "--help")
    assert "work-pool" in stdout
    assert (
        _absent(loaded, ("typer", "click", "pydantic", "reconciler.cli.context", "reconciler.cli.pools"))
        == []
    )
    assert _absent(loaded, OTHER_COMMANDS) == []


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_server(tmp_path_factory.mktemp("server-home")) as url:
        yield url


# Building the pydantic models (or Typer's pydantic adapters) was most of a command's start-up: the commands
# below show a server's JSON as it came, and Typer builds an adapter only for a value that needs one.
MODELS = ("pydantic", "pydantic_core", "reconciler.model", "typer._adapters")


def test_work_pool_commands_through_a_server_load_no_server_side_code(server: str, tmp_path: Path) -> None:
    env = {"WP_API_URL": server}
    loaded, stdout = _loaded(tmp_path, "work-pool", "create", "lazy-pool", "--type", "process", env=env)
    assert "Created work pool" in stdout
    assert _absent(loaded, (*SERVER_SIDE, "httpx", *MODELS)) == []

    loaded, stdout = _loaded(
        tmp_path, "work-pool", "create", "lazy-limited", "--concurrency-limit", "3", "--json", env=env
    )
    assert json.loads(stdout)["concurrency_limit"] == 3
    assert _absent(loaded, (*SERVER_SIDE, "httpx", *MODELS)) == []

    loaded, stdout = _loaded(tmp_path, "work-pool", "ls", "--json", env=env)
    assert [p["name"] for p in json.loads(stdout)] == ["lazy-limited", "lazy-pool"]
    assert _absent(loaded, (*SERVER_SIDE, "httpx", "reconciler.api.shapes", *MODELS)) == []
    assert _absent(loaded, OTHER_COMMANDS) == []

    loaded, stdout = _loaded(tmp_path, "work-pool", "ls", env=env)
    assert "lazy-pool" in stdout and "Work pools" in stdout
    assert _absent(loaded, (*SERVER_SIDE, "httpx", *MODELS)) == []

    for json_flag in ((), ("--json",)):
        loaded, stdout = _loaded(tmp_path, "work-pool", "inspect", "lazy-pool", *json_flag, env=env)
        assert json.loads(stdout)["name"] == "lazy-pool"
        assert _absent(loaded, (*SERVER_SIDE, "httpx", *MODELS)) == []


@pytest.mark.parametrize("group", ["work-pool", "work-queue", "deployment", "flow-run", "worker", "server"])
def test_group_help_loads_neither_typer_nor_the_groups_module(group: str, tmp_path: Path) -> None:
    loaded, stdout = _loaded(tmp_path, group, "--help")
    assert "Usage: wp " + group in stdout
    assert _absent(loaded, (*SERVER_SIDE, *MODELS, "typer", "click", COMMANDS[group].module)) == []
    # a subcommand's help is Typer's, from the group's module alone, still without models
    loaded, stdout = _loaded(tmp_path, group, next(iter(SUBCOMMANDS[group])), "--help")
    assert "Usage: wp " + group in stdout
    others = tuple(m for m in OTHER_COMMANDS if m != COMMANDS[group].module)
    assert _absent(loaded, (*SERVER_SIDE, *MODELS, *others)) == []
