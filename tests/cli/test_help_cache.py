"""The cache of rendered help screens: a cached `wp --help` is what rich prints for the same settings (width,
colour, terminal), a process showing it loads no rich, and an entry is never shown once wp's help sources or
rich change. "What rich prints" is a run of the same `wp` with an empty cache; `tests/cli/test_lazy_commands.py`
checks that both the rendered and the cached help are Typer's."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from wp_cli import ISOLATED, WP_SCRIPT

from reconciler.cli import commands, helpcache
from reconciler.cli import main as cli_main

# Runs `wp ARGV` as the console script does and writes, at exit, the modules it loaded.
PROBE = """
import atexit, json, os, sys
atexit.register(lambda: open(os.environ["PROBE_OUT"], "w").write(json.dumps(sorted(sys.modules))))
sys.argv = ["wp", *json.loads(os.environ["WP_ARGV"])]
from reconciler.cli.main import main
main()
"""


def _environment(tmp_path: Path, cache: Path, **settings: str) -> dict[str, str]:
    """The test's environment without any setting the help reads, then `settings`; the cache under `cache`."""
    env = {k: v for k, v in os.environ.items() if k not in ISOLATED and k not in helpcache.ENVIRONMENT}
    return env | {"WP_HOME": str(tmp_path / "home"), "XDG_CACHE_HOME": str(cache), **settings}


def _wp(env: dict[str, str], *argv: str) -> str:
    done = subprocess.run(
        [str(WP_SCRIPT), *argv], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _entries(cache: Path) -> list[Path]:
    folder = cache / "wp" / "help"
    return sorted(folder.iterdir()) if folder.exists() else []


def test_a_cached_help_is_the_same_bytes_from_a_process_that_loads_no_rich(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    for argv in (["--help"], ["work-pool", "--help"]):
        loaded = []
        shown = []
        for run in range(2):
            out = tmp_path / f"modules-{len(argv)}-{run}.json"
            env = _environment(tmp_path, cache, TERMINAL_WIDTH="90", FORCE_COLOR="1")
            env |= {"WP_ARGV": json.dumps(argv), "PROBE_OUT": str(out)}
            done = subprocess.run(
                [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60
            )
            assert done.returncode == 0, done.stderr
            loaded.append(set(json.loads(out.read_text())))
            shown.append(done.stdout)
        assert "rich" in loaded[0] and "rich" not in loaded[1]  # rendered, then read from the cache
        assert "rich._emoji_codes" not in loaded[0]  # no help text has an emoji code
        assert not any(m.startswith(("rich.", "typer", "click")) for m in loaded[1])
        assert shown[0] == shown[1] and "\x1b[" in shown[0] and "COMMAND [ARGS]" in shown[0]
    assert len(_entries(cache)) == 2


# Each a change a user makes between two `wp --help`: another width, colour forced or refused, a dumb terminal.
SETTINGS: list[dict[str, str]] = [
    {"TERMINAL_WIDTH": "60"},
    {"COLUMNS": "100"},
    {"COLUMNS": "100", "FORCE_COLOR": "1"},
    {"COLUMNS": "100", "FORCE_COLOR": "1", "NO_COLOR": "1"},
    {"COLUMNS": "100", "FORCE_COLOR": "1", "TERM": "dumb"},
    {"COLUMNS": "90", "TTY_COMPATIBLE": "1", "COLORTERM": "truecolor"},
    {"TERMINAL_WIDTH": "60"},
]


def test_a_changed_width_or_colour_setting_shows_that_settings_help(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    seen: set[str] = set()
    for number, settings in enumerate(SETTINGS):
        fresh = _wp(_environment(tmp_path, tmp_path / f"empty-{number}", **settings), "--help")
        for _ in range(2):  # once rendered or found, once from the cache
            assert _wp(_environment(tmp_path, cache, **settings), "--help") == fresh, settings
        seen.add(fresh)
    assert len(seen) == len(SETTINGS) - 1  # every setting but the repeated first changes the output
    assert len(_entries(cache)) == len(SETTINGS) - 1


def _in_terminal(env: dict[str, str], columns: int, *argv: str) -> str:
    """`wp ARGV` in a pseudo-terminal `columns` wide: what a user in a terminal window of that width sees."""
    import fcntl
    import pty
    import struct
    import termios

    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    child = subprocess.Popen(
        [str(WP_SCRIPT), *argv], stdin=terminal, stdout=terminal, stderr=terminal, env=env
    )
    os.close(terminal)
    chunks = []
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: the child has exited and closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(controller)
    assert child.wait(timeout=60) == 0
    return b"".join(chunks).decode()


@pytest.mark.skipif(sys.platform != "linux", reason="pseudo-terminal sizes as Linux sets them")
def test_a_resized_terminal_shows_the_help_at_its_new_width(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    env = _environment(tmp_path, cache, TERM="xterm-256color")
    for number, columns in enumerate((72, 120, 72)):
        empty = _environment(tmp_path, tmp_path / f"empty-{number}", TERM="xterm-256color")
        fresh = _in_terminal(empty, columns, "--help")
        assert "\x1b[" in fresh and "╯\x1b[0m\r\n" in fresh  # coloured
        assert max(len(line) for line in re.sub("\x1b\\[[0-9;]*m", "", fresh).splitlines()) == columns
        assert _in_terminal(env, columns, "--help") == _in_terminal(env, columns, "--help") == fresh
    assert len(_entries(cache)) == 2


@pytest.fixture
def cached_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Path]:
    """An in-process `wp --help` with its cache in tmp_path; yields the cache entry it wrote."""
    for name in helpcache.ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TERMINAL_WIDTH", "80")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert _root_help(monkeypatch, capsys).lstrip(" ").startswith("\n Usage: wp")
    [entry] = _entries(tmp_path)
    yield entry


def _root_help(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> str:
    monkeypatch.setattr(sys, "argv", ["wp", "--help"])
    capsys.readouterr()
    with pytest.raises(SystemExit):
        cli_main.run()
    return capsys.readouterr().out


def _tamper(entry: Path) -> None:
    """Replace the entry's help text, keeping its key: what the cache shows from then on is recognisable."""
    key, _, _ = entry.read_text(encoding="utf-8").partition("\n")
    entry.write_text(f"{key}\nTAMPERED\n", encoding="utf-8")


def test_an_entry_whose_sources_changed_is_never_shown(
    cached_in_process: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _tamper(cached_in_process)
    assert _root_help(monkeypatch, capsys) == "TAMPERED\n\n"  # the cache is what is shown...

    import rich.table

    for source in (commands.__file__, rich.table.__file__):  # ...until wp's help or rich is another
        before = os.stat(source)
        try:
            os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
            shown = _root_help(monkeypatch, capsys)
        finally:
            os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns))
        assert shown.lstrip(" ").startswith("\n Usage: wp") and "TAMPERED" not in shown, source
    # The old entry is there still, and valid again now the files are as they were
    assert _root_help(monkeypatch, capsys) == "TAMPERED\n\n"


def test_a_damaged_entry_is_rendered_again(
    cached_in_process: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    whole = cached_in_process.read_text(encoding="utf-8")
    for damaged in (whole[: len(whole) // 4], "", whole.replace("'80'", "'81'", 1)):
        cached_in_process.write_text(damaged, encoding="utf-8")
        assert _root_help(monkeypatch, capsys) == whole.partition("\n")[2] + "\n"
        assert cached_in_process.read_text(encoding="utf-8") == whole  # and written again whole


def test_a_cache_that_cannot_be_written_still_shows_the_help(tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    shown = _wp(_environment(tmp_path, blocked, TERMINAL_WIDTH="80"), "--help")
    assert shown == _wp(_environment(tmp_path, tmp_path / "cache", TERMINAL_WIDTH="80"), "--help")
    assert "Usage: wp" in shown


def test_the_cache_keeps_at_most_its_limit_of_entries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(helpcache, "LIMIT", 3)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    for width in range(70, 76):
        monkeypatch.setenv("TERMINAL_WIDTH", str(width))
        assert "Usage: wp" in _root_help(monkeypatch, capsys)
    kept = _entries(tmp_path)
    assert len(kept) == 3 and all(".partial" not in p.name for p in kept)
    assert any("'75'" in p.read_text(encoding="utf-8").partition("\n")[0] for p in kept)  # the newest


def test_the_key_has_every_environment_variable_the_rendering_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rich that reads a new variable (NO_COLOR, FORCE_COLOR, … came that way) must change the key."""
    from reconciler.cli import roothelp

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    roothelp.render(helpcache.ROOT)
    rendering = [m for name, m in sys.modules.items() if name.startswith("rich")] + [roothelp]
    read: set[str] = set()
    for module in rendering:
        source = Path(module.__file__ or "").read_text(encoding="utf-8")
        read |= set(re.findall(r"""(?:environ\.get|getenv|environ\[)\(?\s*["'](\w+)["']""", source))
    assert {"NO_COLOR", "FORCE_COLOR", "COLUMNS", "TERMINAL_WIDTH"} <= read  # the scan finds them
    assert read <= set(helpcache.ENVIRONMENT), read - set(helpcache.ENVIRONMENT)


def test_an_emoji_code_in_a_help_text_is_still_rendered_as_typer_does() -> None:
    from rich.text import Text

    from reconciler.cli import roothelp

    for text in (":thumbs_up: ok", "a [bold]b:[/bold] c", "x :cross_mark-text: y", "no code: here"):
        assert roothelp._markup(text) == Text.from_markup(text, style="")
    assert roothelp._markup(":thumbs_up:").plain != ":thumbs_up:"
