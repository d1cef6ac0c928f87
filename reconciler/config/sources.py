"""Where each part of a project's configuration was written: file, line and column.

Owns `Location`, `Positions` (merged-document path -> where it was written, and its path inside that file) and
`SourceMap` (object address + field path -> Location), plus turning a problem at a path into a `Diagnostic`.

Must never do I/O: the loader fills these in, everyone else only reads them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from reconciler.diagnostics import Diagnostic, Severity

Path = tuple[str | int, ...]

# Model field -> where a deployment writes it in the config, so engine paths land on the right line.
DEPLOYMENT_FIELD_PATHS: dict[str, Path] = {
    "work_pool": ("work_pool", "name"),
    "work_queue": ("work_pool", "work_queue_name"),
    "job_variables": ("work_pool", "job_variables"),
    "pull_steps": ("pull",),
}


# Tuples, not dataclasses: a large project records a Written for each of its hundreds of thousands of nodes.
class Location(NamedTuple):
    file: str  # relative to the project directory
    line: int  # 1-based
    column: int  # 1-based


class Written(tuple[str, int, int, Path]):
    """One node of the merged document: where it was written and its path inside that file.

    Stored flat as (file, line, column, local_path), one small tuple per node; `location` is built on demand.
    """

    __slots__ = ()

    def __new__(cls, location: Location, local_path: Path) -> Written:
        return tuple.__new__(cls, (location.file, location.line, location.column, local_path))

    @classmethod
    def at(cls, file: str, line: int, column: int, local_path: Path) -> Written:
        """The same as `Written(Location(file, line, column), local_path)`, without the Location."""
        return tuple.__new__(cls, (file, line, column, local_path))

    @property
    def location(self) -> Location:
        return Location(self[0], self[1], self[2])

    @property
    def local_path(self) -> Path:
        return self[3]

    def __repr__(self) -> str:
        return f"Written(location={self.location!r}, local_path={self.local_path!r})"


@dataclass
class Positions:
    """Merged-document paths (`("work_pools", 3, "name")`) -> where the value, and its key, were written.

    Merged paths differ from in-file paths when `include:` files add to the lists of wp.yaml.
    """

    values: dict[Path, Written] = field(default_factory=dict)
    keys: dict[Path, Written] = field(default_factory=dict)
    # False when some file under these paths was read without recording positions (a large file of a clean
    # project): diagnostics made here are then marked not `placed`.
    complete: bool = True

    def move(self, src: Path, dst: Path, *, copy: bool = False) -> None:
        """Re-file every position under `src` as under `dst` (a renamed or defaulted field)."""
        for table in (self.values, self.keys):
            moved = {dst + p[len(src) :]: w for p, w in table.items() if p[: len(src)] == src}
            if not copy:
                for p in [p for p in table if p[: len(src)] == src]:
                    del table[p]
            table.update(moved)

    def nearest(self, path: Path, *, key: bool = False) -> tuple[Written | None, Path]:
        """The written node of the longest known prefix of `path`, and the rest of the path below it."""
        if key and path in self.keys:
            return self.keys[path], ()
        for n in range(len(path), -1, -1):
            found = self.values.get(path[:n])
            if found is not None:
                return found, path[n:]
        return None, path

    def where(self, path: Path, *, key: bool = False) -> tuple[Location | None, Path]:
        """Location and in-file field path of a merged path (for a Diagnostic)."""
        written, rest = self.nearest(path, key=key)
        if written is None:
            return None, path
        return written.location, written.local_path + rest

    def diagnostic(
        self, severity: Severity, summary: str, detail: str, path: Path, *, key: bool = False
    ) -> Diagnostic:
        location, local = self.where(path, key=key)
        if location is None:
            return Diagnostic(severity, summary, detail, path=local, placed=self.complete)
        return Diagnostic(
            severity,
            summary,
            detail,
            location.file,
            location.line,
            location.column,
            local,
            placed=self.complete,
        )

    def error(self, summary: str, detail: str, path: Path, *, key: bool = False) -> Diagnostic:
        return self.diagnostic(Severity.ERROR, summary, detail, path, key=key)

    def warning(self, summary: str, detail: str, path: Path, *, key: bool = False) -> Diagnostic:
        return self.diagnostic(Severity.WARNING, summary, detail, path, key=key)


class SourceMap:
    """Maps (address, field path) -> Location, e.g. `("work_pool.k8s", ("concurrency_limit",))`."""

    def __init__(self, positions: Positions | None = None, roots: Mapping[str, Path] | None = None) -> None:
        self._positions = positions or Positions()
        self._roots = dict(roots or {})  # address -> merged path of the object

    @property
    def addresses(self) -> list[str]:
        return sorted(self._roots)

    def merged_path(self, address: str, path: Path = ()) -> Path | None:
        root = self._roots.get(address)
        if root is None:
            return None
        if address.startswith("deployment.") and path and isinstance(path[0], str):
            path = DEPLOYMENT_FIELD_PATHS.get(path[0], path[:1]) + path[1:]
        return root + path

    def locate(self, address: str, path: Path = ()) -> Location | None:
        """The location of the longest known prefix of `path` within the object at `address`."""
        merged = self.merged_path(address, path)
        if merged is None:
            return None
        return self._positions.where(merged)[0]

    def diagnostic(
        self, severity: Severity, summary: str, detail: str, address: str, path: Path = ()
    ) -> Diagnostic:
        """A Diagnostic at `path` of the object at `address`, with file:line:column and the in-file path."""
        merged = self.merged_path(address, path)
        if merged is None:
            return Diagnostic(severity, summary, detail, path=path)
        return self._positions.diagnostic(severity, summary, detail, merged)
