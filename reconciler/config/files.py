"""Reading one file that a configuration names, as untrusted input.

Owns the rules every such read follows: the path, symlinks resolved, must lie inside the project directory
(a pull request's `!file ../../creds` would otherwise land in the plan CI posts); only a regular file of at
most MAX_FILE_BYTES is read (a named pipe would block forever, /dev/zero never ends), without blocking; the
text must be UTF-8. Each refusal is a `FileProblem` whose text says what to do; the caller places it.

Must never parse what it reads or decide what a file means.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from reconciler.config.inputs import note_read

MAX_FILE_BYTES = 64 * 1024 * 1024  # a 10,000-deployment wp.yaml is ~4 MB
_CHUNK = 1024 * 1024


class FileProblem(Exception):
    """Why a named file is not read: `summary` names it, `detail` says how to fix it; `line` and `column`
    (1-based) when the problem is at a place inside the file."""

    def __init__(self, summary: str, detail: str, line: int | None = None, column: int | None = None) -> None:
        super().__init__(summary)
        self.summary, self.detail, self.line, self.column = summary, detail, line, column


def confined(root: Path, path: Path, name: str) -> Path:
    """`path` with symlinks resolved, when it lies inside `root` (itself resolved); else FileProblem."""
    full = path.resolve()
    if not full.is_relative_to(root):
        raise FileProblem(
            f"'{name}' is outside the project directory",
            f"every file a config names must be inside {root} (symlinks are followed first); "
            "copy the file into the project",
        )
    return full


def read_text(path: Path, name: str) -> str:
    """The UTF-8 text of the regular file `path` (already confined); FileProblem for anything else."""
    return decode(read_bytes(path, name), name)


def read_bytes(path: Path, name: str) -> bytes:
    try:
        # stat first: opening a FIFO for reading would wait for a writer; O_NONBLOCK covers a swap after it
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise FileProblem(f"'{name}' is not a regular file", "name a regular file inside the project")
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise FileProblem(
            f"file '{name}' does not exist", "paths are relative to the file that names them"
        ) from None
    except OSError as exc:
        raise FileProblem(f"file '{name}' cannot be read ({exc.strerror})", "check its permissions") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FileProblem(f"'{name}' is not a regular file", "name a regular file inside the project")
        if info.st_size > MAX_FILE_BYTES:
            raise _too_large(name)
        parts: list[bytes] = []
        size = 0
        while size <= MAX_FILE_BYTES:  # bounded even if the file grows while it is read
            chunk = os.read(fd, _CHUNK)
            if not chunk:
                data = b"".join(parts)
                note_read(path, data)
                return data
            parts.append(chunk)
            size += len(chunk)
        raise _too_large(name)
    except OSError as exc:
        if exc.errno == errno.EAGAIN:
            raise FileProblem(f"'{name}' is not a regular file", "name a regular file") from None
        raise FileProblem(f"file '{name}' cannot be read ({exc.strerror})", "check the file") from None
    finally:
        os.close(fd)


def _too_large(name: str) -> FileProblem:
    return FileProblem(
        f"file '{name}' is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB",
        "a config file or a file it names may be at most that large; split it with `include:`",
    )


def decode(data: bytes, name: str) -> str:
    """`data` as UTF-8 text; FileProblem naming the line and column of the first byte that is not."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
            raise FileProblem(
                f"'{name}' is UTF-16 text", "save it as UTF-8 (wp reads config files as UTF-8 only)", 1, 1
            ) from None
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise FileProblem(
            f"'{name}' is not UTF-8 text: byte 0x{data[exc.start]:02x} at line {line}, column {column}",
            "save the file as UTF-8, or remove the byte",
            line,
            column,
        ) from None
