"""Diagnostic: one thing the user must fix, with where (file, line, column, field path) and how.

Diagnostics are values; stages accumulate them so that every error of a config is reported at once.
Must never do I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Diagnostic:
    severity: Severity
    summary: str
    detail: str = ""
    file: str | None = None
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based
    path: tuple[str | int, ...] = field(default_factory=tuple)
    # False when the file was read without recording positions, so file:line:column may be only an ancestor's:
    # the loader reads such a project again with positions before showing it (config.load.load_project).
    placed: bool = field(default=True, compare=False, repr=False)

    @property
    def location(self) -> str:
        if self.file is None:
            return ""
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return where

    @property
    def field_path(self) -> str:
        return format_path(self.path)

    def to_json(self) -> dict[str, Any]:
        return {
            "severity": self.severity.value,
            "summary": self.summary,
            "detail": self.detail,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": self.field_path,
        }

    def format(self) -> str:
        """`file:line:col: error: summary (at path)` then the detail indented: the plain-text form."""
        head = f"{self.location}: " if self.location else ""
        at = f" (at {self.field_path})" if self.path else ""
        text = f"{head}{self.severity.value}: {self.summary}{at}"
        if self.detail:
            text += "\n" + "\n".join("    " + ln for ln in self.detail.splitlines())
        return text


def format_path(path: Sequence[str | int]) -> str:
    """`work_pools[0].queues[1].priority`"""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def error(summary: str, detail: str = "", **where: Any) -> Diagnostic:
    return Diagnostic(Severity.ERROR, summary, detail, **where)


def warning(summary: str, detail: str = "", **where: Any) -> Diagnostic:
    return Diagnostic(Severity.WARNING, summary, detail, **where)


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    return any(d.severity is Severity.ERROR for d in diagnostics)


def sort_diagnostics(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    return sorted(diagnostics, key=lambda d: (d.file or "", d.line or 0, d.column or 0, d.summary))
