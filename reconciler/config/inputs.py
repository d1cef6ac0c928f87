"""What a project load depended on, and whether that is still the same: the input fingerprint.

Owns the log a load keeps while it runs (`watching()`): every file it read with the digest of the exact bytes,
every glob it listed (include patterns, `*.tf`), every path whose existence decided something (prefect.yaml, an
entrypoint's module file), every environment variable it looked up (a value or its absence); and the record
made from that log (`InputRecord`), which `still_matches()` checks again by hashing those files and listing
those globs, without parsing anything. Values of environment variables never appear in a record, only inside
its digest.

Must never parse, validate or talk to the store: reconciler/shortcut.py decides what a matching record means.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RECORD_VERSION = 1


@dataclass
class InputLog:
    """The inputs one load used, by absolute path (symlinks as the loader saw them)."""

    reads: dict[str, str] = field(default_factory=dict)  # resolved path -> sha256 of the bytes read
    globs: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (directory, pattern) -> files
    probes: dict[str, bool] = field(default_factory=dict)  # path -> is a file
    env: dict[str, str | None] = field(default_factory=dict)  # name -> value (None: not set)
    env_listed: bool = False  # the whole environment was iterated: any variable may matter


_LOG: contextvars.ContextVar[InputLog | None] = contextvars.ContextVar("wp_input_log", default=None)


@contextlib.contextmanager
def watching() -> Iterator[InputLog]:
    """Log the inputs of the load run inside the block."""
    log = InputLog()
    token = _LOG.set(log)
    try:
        yield log
    finally:
        _LOG.reset(token)


def note_read(path: Path | str, data: bytes | str) -> None:
    log = _LOG.get()
    if log is not None:
        raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
        log.reads[os.path.realpath(path)] = hashlib.sha256(raw).hexdigest()


def note_glob(directory: Path, pattern: str, files: list[Path]) -> None:
    """`files`: what `directory.glob(pattern)` listed that is a regular file (see `_glob_files`)."""
    log = _LOG.get()
    if log is not None:
        log.globs[(str(directory), pattern)] = sorted(str(p) for p in files)


def note_probe(path: Path, is_file: bool) -> None:
    log = _LOG.get()
    if log is not None:
        log.probes.setdefault(str(path), is_file)


def glob_files(directory: Path, pattern: str) -> list[Path]:
    """The regular files `pattern` matches under `directory`, as every glob of a load lists them."""
    found = sorted(p for p in directory.glob(pattern) if p.is_file())
    note_glob(directory, pattern, found)
    return found


def is_file(path: Path) -> bool:
    """`path.is_file()`, logged: the answer decided something about the load."""
    answer = path.is_file()
    note_probe(path, answer)
    return answer


class WatchedEnv(Mapping[str, str]):
    """The environment as a load sees it, logging each variable looked up (set or not)."""

    def __init__(self, env: Mapping[str, str], log: InputLog) -> None:
        self._env, self._log = env, log

    def __getitem__(self, name: str) -> str:
        value = self._env.get(name)
        self._log.env[name] = value
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        self._log.env[name] = self._env.get(name)
        return name in self._env

    def __iter__(self) -> Iterator[str]:
        self._log.env_listed = True
        return iter(self._env)

    def __len__(self) -> int:
        self._log.env_listed = True
        return len(self._env)


@dataclass(frozen=True)
class InputRecord:
    """The inputs of a load, relative to the project root, and their digest (`fingerprint`).

    `context` is what else the result depends on (wp's version, the plan flags); it goes into the digest."""

    root: str
    files: tuple[str, ...]
    globs: tuple[tuple[str, str], ...]  # (directory relative to root, pattern)
    probes: tuple[str, ...]
    env: tuple[str, ...]
    context: Mapping[str, Any]
    fingerprint: str

    def to_json(self) -> dict[str, Any]:
        return {
            "version": RECORD_VERSION,
            "root": self.root,
            "files": list(self.files),
            "globs": [list(g) for g in self.globs],
            "probes": list(self.probes),
            "env": list(self.env),
            "context": dict(self.context),
            "fingerprint": self.fingerprint,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> InputRecord | None:
        """None for a record of another shape (another wp version wrote it)."""
        try:
            if data["version"] != RECORD_VERSION:
                return None
            return cls(
                root=str(data["root"]),
                files=tuple(str(f) for f in data["files"]),
                globs=tuple((str(d), str(p)) for d, p in data["globs"]),
                probes=tuple(str(p) for p in data["probes"]),
                env=tuple(str(e) for e in data["env"]),
                context=dict(data["context"]),
                fingerprint=str(data["fingerprint"]),
            )
        except (KeyError, TypeError, ValueError):
            return None


def context_of(**flags: Any) -> dict[str, Any]:
    """What besides the files decides a plan: wp's code (its version, and the size and time of each of its
    modules, so an edited checkout never trusts a record its older code made), Python's version, the flags."""
    import reconciler

    h = hashlib.sha256()
    package = Path(reconciler.__file__).parent
    for directory, subdirs, names in os.walk(package):
        subdirs.sort()
        for name in sorted(names):
            if name.endswith(".py"):
                info = os.stat(os.path.join(directory, name))
                h.update(f"{directory}/{name}:{info.st_size}:{info.st_mtime_ns}\n".encode())
    return {
        "wp": reconciler.__version__,
        "code": h.hexdigest(),
        "python": list(sys.version_info[:2]),
        **flags,
    }


def record_of(root: Path, log: InputLog, context: Mapping[str, Any]) -> InputRecord | None:
    """The record of a finished load, digested from what the load itself saw (not read again: a file edited
    since must not pass for what was loaded). None when the log cannot be checked again cheaply (the
    environment was listed, or a file lies outside the project)."""
    if log.env_listed:
        return None
    base = os.path.realpath(root)

    def rel(path: str) -> str | None:
        relative = os.path.relpath(path, base)
        return (
            None
            if relative == ".." or relative.startswith(".." + os.sep) or os.path.isabs(relative)
            else relative
        )

    reads = {rel(p): digest for p, digest in log.reads.items()}
    globs = {(rel(d), pattern): files for (d, pattern), files in log.globs.items()}
    probes = {rel(p): answer for p, answer in log.probes.items()}
    if None in reads or any(d is None for d, _ in globs) or None in probes:
        return None
    record = InputRecord(
        root=base,
        files=tuple(sorted(f for f in reads if f is not None)),
        globs=tuple(sorted((d, p) for d, p in globs if d is not None)),
        probes=tuple(sorted(p for p in probes if p is not None)),
        env=tuple(sorted(log.env)),
        context=dict(context),
        fingerprint="",
    )
    seen = _Seen(
        lambda name: reads.get(name),
        lambda directory, pattern: [Path(f) for f in globs.get((directory, pattern), [])],
        lambda probe: probes.get(probe, False),
    )
    digest = _digest(record, log.env, seen)
    return None if digest is None else InputRecord(**{**record.__dict__, "fingerprint": digest})


def still_matches(record: InputRecord, env: Mapping[str, str], context: Mapping[str, Any]) -> bool:
    """Whether the inputs `record` lists are all as they were: same files (by content), same glob matches,
    same answers to the probes, same variables, same context."""
    if dict(context) != dict(record.context):
        return False
    root = Path(record.root)

    def file_digest(name: str) -> str | None:
        try:
            return hashlib.sha256((root / name).read_bytes()).hexdigest()
        except OSError:
            return None

    seen = _Seen(
        file_digest,
        lambda directory, pattern: sorted(p for p in (root / directory).glob(pattern) if p.is_file()),
        lambda probe: (root / probe).is_file(),
    )
    return _digest(record, {name: env.get(name) for name in record.env}, seen) == record.fingerprint


@dataclass(frozen=True)
class _Seen:
    """How `_digest` learns a file's digest, a glob's matches and a probe's answer: from a load's log when a
    record is made, from the disk when it is checked."""

    file: Callable[[str], str | None]  # relative name -> sha256 hex; None when it cannot be read
    glob: Callable[[str, str], list[Path]]  # (relative directory, pattern) -> matching regular files
    probe: Callable[[str], bool]  # relative path -> is a file


def _digest(record: InputRecord, env: Mapping[str, str | None], seen: _Seen) -> str | None:
    """sha256 over everything `record` lists; None if a listed file cannot be read."""
    root = Path(record.root)
    h = hashlib.sha256()

    def add(*parts: Any) -> None:
        h.update(json.dumps(parts, sort_keys=True).encode())
        h.update(b"\n")

    add("context", record.context, record.root)
    for name in record.files:
        digest = seen.file(name)
        if digest is None:
            return None
        add("file", name, digest)
    for directory, pattern in record.globs:
        found = seen.glob(directory, pattern)
        # each match by its own path and by where it leads (a symlink swapped to point elsewhere)
        add("glob", directory, pattern, [(os.path.relpath(p, root), os.path.realpath(p)) for p in found])
    for probe in record.probes:
        add("probe", probe, bool(seen.probe(probe)))
    for name in record.env:
        add("env", name, env.get(name))
    return h.hexdigest()
