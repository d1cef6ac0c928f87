"""The cache of rendered help screens (`wp --help`, `wp GROUP --help`): each screen as rich last wrote it, kept
under the user's cache directory and shown again only while everything the rendering reads is unchanged.

Rendering the help means importing rich, most of `wp --help`'s time; showing a cached screen is a file read.
The key is every input of the rendering, taken raw rather than interpreted, so that no decision of rich's is
copied here: the screen; wp's help sources and rich's files (path, size, mtime, as Python's own bytecode cache
checks a source); the Python version; the environment variables rich and Typer's help settings read; whether
stdout is a terminal and its encoding; the terminal's width. The whole key is stored in the entry and compared
on every read, so an entry is never shown for another key (the file name's checksum only spreads entries out).
Must import nothing beyond the standard modules Python starts with, and never decide what the help says: that
is `reconciler.cli.roothelp`'s. `tests/cli/test_help_cache.py` checks the key against rich's source.
"""

from __future__ import annotations

import os
import sys

ROOT = "root"  # the screen of `wp --help`; any other screen is a group's, named as the group
# Bump when the entry format or the key's meaning changes.
FORMAT = "1"
# Environment variables rich reads while rendering (rich/console.py, rich/_unicode_data) and those
# `roothelp._console` reads as Typer does.
ENVIRONMENT = (
    "COLORTERM",
    "COLUMNS",
    "DATABRICKS_RUNTIME_VERSION",
    "FORCE_COLOR",
    "GITHUB_ACTIONS",
    "JUPYTER_COLUMNS",
    "JUPYTER_LINES",
    "LINES",
    "NO_COLOR",
    "PY_COLORS",
    "TERM",
    "TERMINAL_WIDTH",
    "TTY_COMPATIBLE",
    "TTY_INTERACTIVE",
    "UNICODE_VERSION",
    "_TYPER_FORCE_DISABLE_TERMINAL",
)
# The modules of this package whose code or tables decide the help's text and look.
SOURCES = ("roothelp.py", "commands.py", "helpcache.py")
# Entries kept at most; the oldest go first (each width, colour setting and version makes its own).
LIMIT = 64


def show(screen: str) -> None:
    """Write the help screen `screen` (see `roothelp.render`) to stdout, from the cache when it holds it for
    this key, else rendered with rich and then cached."""
    key = _key(screen)
    text = _load(screen, key) if key is not None else None
    if text is None:
        from reconciler.cli import roothelp

        text = roothelp.render(screen)
        if key is not None and _rendered_by_keyed_rich():
            _store(screen, key, text)
    sys.stdout.write(text)
    sys.stdout.flush()


def directory() -> str:
    """$XDG_CACHE_HOME/wp/help, or ~/.cache/wp/help (the XDG base directory rule: a relative value is
    ignored)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "wp", "help")


def _stamp(path: str) -> tuple[str, int, int]:
    info = os.stat(path)
    return (path, info.st_size, info.st_mtime_ns)


def _rich_directory() -> str | None:
    """The directory `import rich` would load, found without importing it; None when it is not a plain
    package directory on sys.path (then nothing is cached)."""
    for entry in sys.path:
        candidate = os.path.join(entry or os.getcwd(), "rich")
        if os.path.isfile(os.path.join(candidate, "__init__.py")):
            return os.path.abspath(candidate)
    return None


def _rich_stamps(directory: str) -> list[tuple[str, int, int]]:
    """Every file of the rich package, its subpackages' (rich/_unicode_data) included; not bytecode."""
    stamps = []
    with os.scandir(directory) as entries:
        for entry in sorted(entries, key=lambda entry: entry.name):
            if entry.name == "__pycache__":
                continue
            if entry.is_dir():
                stamps += _rich_stamps(entry.path)
            else:
                stamps.append(_stamp(entry.path))
    return stamps


def _terminal_width() -> int | None:
    # rich asks stdin, stdout, then stderr; the first that is a terminal gives the size (the height never
    # changes printed output, so it is not part of the key).
    for descriptor in (0, 1, 2):
        try:
            return os.get_terminal_size(descriptor).columns
        except (AttributeError, ValueError, OSError):
            continue
    return None


def _key(screen: str) -> str | None:
    """Every input of the rendering, as one line; None when it cannot be told (then nothing is cached)."""
    if os.name != "posix" or "IPython" in sys.modules or "idlelib" in sys.modules:
        return None  # rich decides differently on Windows, in Jupyter and in IDLE
    rich = _rich_directory()
    if rich is None:
        return None
    out = sys.stdout
    try:
        terminal = out.isatty()
        here = os.path.dirname(os.path.abspath(__file__))
        sources = [_stamp(os.path.join(here, name)) for name in SOURCES]
        rich_files = _rich_stamps(rich)
    except (AttributeError, ValueError, OSError):
        return None
    environment = [os.environ.get(name) for name in ENVIRONMENT]
    encoding = getattr(out, "encoding", None)
    key = (FORMAT, screen, sys.version, sys.platform, terminal, encoding, _terminal_width(), environment)
    return repr((key, sources, rich, rich_files))


def _rendered_by_keyed_rich() -> bool:
    """Whether the rich just used is the one the key stamps (an import hook could have loaded another)."""
    path = getattr(sys.modules.get("rich"), "__file__", None)
    return path is not None and os.path.dirname(os.path.abspath(path)) == _rich_directory()


def _path(screen: str, key: str) -> str:
    import zlib

    return os.path.join(directory(), f"{screen}-{zlib.crc32(key.encode()):08x}")


def _load(screen: str, key: str) -> str | None:
    try:
        with open(_path(screen, key), encoding="utf-8", newline="") as file:
            stored, newline, text = file.read().partition("\n")
    except (OSError, UnicodeDecodeError):
        return None
    return text if newline and stored == key else None


def _store(screen: str, key: str, text: str) -> None:
    """Write the entry atomically (a concurrent `wp --help` reads the old entry or the new one, never half);
    a cache that cannot be written is skipped silently: the help was shown."""
    path = _path(screen, key)
    partial = f"{path}.{os.getpid()}.partial"
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        with open(partial, "w", encoding="utf-8", newline="") as file:
            file.write(f"{key}\n{text}")
        os.replace(partial, path)
        _prune(path)
    except OSError:
        import contextlib

        with contextlib.suppress(OSError):
            os.unlink(partial)


def _prune(written: str) -> None:
    """Keep the LIMIT newest entries, `written` always among them (mtimes can tie within a clock tick)."""
    with os.scandir(os.path.dirname(written)) as listed:
        others = [(e.stat().st_mtime_ns, e.path) for e in listed if e.is_file() and e.path != written]
    for _, path in sorted(others)[: max(0, len(others) + 1 - LIMIT)]:
        os.unlink(path)
