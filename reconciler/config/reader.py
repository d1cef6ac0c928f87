"""Reading one YAML/JSON file of a project into plain values, with where each value and key was written.

Owns `FileReader`: a file's text (confined to the project) parsed by libyaml, from its events when the file has
no anchors or merge keys, else from its nodes (aliases and merge keys resolved, bounded by `check_bounds`);
`!file` tags read as documents of their own and re-filed under the tag's path; duplicate keys and unknown tags
reported; YAML errors worded as diagnostics at their line and column. `config.load` assembles the project's
files into one document and runs the pipeline on it.

Must never write files, read os.environ or talk to the store.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from reconciler.config.files import FileProblem, confined, read_text
from reconciler.config.sources import Location, Positions, Written
from reconciler.config.sources import Path as FieldPath
from reconciler.config.yaml_values import (
    MERGE_TAG,
    STR_TAG,
    EventBuilder,
    Loader,
    NeedsNodes,
    Refused,
    check_bounds,
    known_tag,
    scalar_value,
    unknown_tag_problem,
)
from reconciler.diagnostics import Diagnostic, error

# Files up to this size are read with positions even when positions are not asked for: recording costs little
# there, and a warning in a small prefect.yaml (ignored `build:` keys) then needs no second load of the project.
ALWAYS_RECORD_BYTES = 64 * 1024


@dataclass
class FileDoc:
    value: Any
    positions: Positions


@dataclass
class FileReader:
    """Reads the YAML/JSON files of a project, recording positions and diagnostics for what it cannot read."""

    root: Path
    diagnostics: list[Diagnostic] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    # True while reading a file without anchors: each node then has one parent, so a list item's nodes can
    # be dropped once converted (a large file's node tree was a third of the loader's peak memory).
    release: bool = False
    # Whether substitution may change the document: some text holds `$` (an environment reference) or `&`
    # (an anchor, whose aliases share one value that substitution's copy would separate). Without either,
    # the copy of a large document that substitution makes is skipped.
    substitute: bool = False
    # Whether to record where each value and key was written; only diagnostics need that (see load_project).
    record: bool = True

    def rel(self, path: Path) -> str:
        return os.path.relpath(path, self.root).replace(os.sep, "/")

    def read(self, path: Path, at: tuple[str, int, int] | None = None) -> FileDoc | None:
        """Parse one file; `at` is where it was named (a `!file` tag), for the diagnostic if it is missing."""
        name = self.rel(path)
        try:
            text = read_text(confined(self.root, path, name), name)
        except FileProblem as exc:
            where: dict[str, Any] = {"file": at[0], "line": at[1], "column": at[2]} if at else {"file": name}
            if exc.line is not None:
                where = {"file": name, "line": exc.line, "column": exc.column}
            self.diagnostics.append(error(exc.summary, exc.detail, **where))
            return None
        self.files.append(name)
        self.substitute = self.substitute or "$" in text or "&" in text
        seen = frozenset({path.resolve()})
        record = self.record or len(text) <= ALWAYS_RECORD_BYTES
        if "&" not in text and "<<" not in text:  # no anchors or merge keys: the events are enough
            marks = (len(self.diagnostics), len(self.files))
            positions = Positions()
            positions.values[()] = Written(Location(name, 1, 1), ())
            try:

                def include(target: str, at: FieldPath) -> Any:
                    return self.included(target, name, path, at, positions, seen)

                builder = EventBuilder(text, name, positions if record else None, include)
                value = builder.build()
                positions.complete = positions.complete and record
                return FileDoc(value, positions)
            except NeedsNodes:  # read again with nodes, as if the events had not been read
                del self.diagnostics[marks[0] :], self.files[marks[1] :]
        try:
            check_bounds(text)  # before any alias is expanded
            node = yaml.compose(text, Loader=Loader)
        except Refused as exc:
            self.diagnostics.append(
                error(exc.summary, exc.detail, file=name, line=exc.line, column=exc.column, path=exc.path)
            )
            return None
        except yaml.YAMLError as exc:
            self.diagnostics.append(yaml_error(name, text, exc))
            return None
        positions = Positions()
        positions.values[()] = Written(Location(name, 1, 1), ())
        previous, self.release = self.release, "&" not in text
        recording, self.record = self.record, record
        try:
            value = self.plain(node, name, path, (), positions, seen)
        finally:
            self.release, self.record = previous, recording
        positions.complete = positions.complete and record
        return FileDoc(value, positions)

    def plain(
        self,
        node: Any,
        file: str,
        path: Path,
        at: FieldPath,
        positions: Positions,
        seen: frozenset[Path],
    ) -> Any:
        """YAML nodes -> plain Python values, recording where each child was written.

        `at` is the node's path in this file; it is also its path in the document being read (an included
        file is read as a document of its own and re-filed by `included`), so one tuple serves as both."""
        if not known_tag(node.tag):
            mark = node.start_mark
            summary, detail = unknown_tag_problem(node.tag)
            self.diagnostics.append(
                error(summary, detail, file=file, line=mark.line + 1, column=mark.column + 1, path=at)
            )
            return None
        if isinstance(node, ScalarNode):
            if node.tag == "!file":
                return self.included(str(node.value), file, path, at, positions, seen)
            return scalar_value(node)
        if isinstance(node, MappingNode):
            out: dict[str, Any] = {}
            keys, values = positions.keys, positions.values
            for key, key_node, value_node in self.entries(node, file):
                child = (*at, key)
                if self.record:
                    km, vm = key_node.start_mark, value_node.start_mark
                    keys[child] = Written.at(file, km.line + 1, km.column + 1, child)
                    values[child] = Written.at(file, vm.line + 1, vm.column + 1, child)
                if value_node.tag == STR_TAG and isinstance(value_node, ScalarNode):  # most values
                    out[key] = value_node.value
                else:
                    out[key] = self.plain(value_node, file, path, child, positions, seen)
            return out
        if isinstance(node, SequenceNode):
            items: list[Any] = []
            nodes = node.value
            for i, item in enumerate(nodes):
                child = (*at, i)
                if self.record:
                    mark = item.start_mark
                    positions.values[child] = Written.at(file, mark.line + 1, mark.column + 1, child)
                items.append(self.plain(item, file, path, child, positions, seen))
                if self.release:
                    nodes[i] = None
            return items
        return None

    def entries(self, node: MappingNode, file: str) -> list[tuple[str, Node, Node]]:
        """A mapping's (key, key node, value node) entries with `<<:` merge keys resolved (explicit keys win,
        then earlier merged maps); a key written twice is an error, not a silent overwrite."""
        merged: dict[str, tuple[str, Node, Node]] = {}
        explicit: dict[str, tuple[str, Node, Node]] = {}
        for key_node, value_node in node.value:
            if key_node.tag == MERGE_TAG:
                sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
                for source in sources:
                    if isinstance(source, MappingNode):
                        for entry in self.entries(source, file):
                            merged.setdefault(entry[0], entry)
                continue
            key = str(scalar_value(key_node))
            if key in explicit:
                first = explicit[key][1].start_mark
                self.diagnostics.append(
                    error(
                        f"duplicate key '{key}'",
                        f"it is already set on line {first.line + 1}; remove one of them",
                        file=file,
                        line=key_node.start_mark.line + 1,
                        column=key_node.start_mark.column + 1,
                    )
                )
            explicit[key] = (key, key_node, value_node)
        if not merged:
            return list(explicit.values())
        return list({**merged, **explicit}.values())

    def included(
        self,
        target: str,
        file: str,
        path: Path,
        doc_path: FieldPath,
        positions: Positions,
        seen: frozenset[Path],
    ) -> Any:
        """The content of a `!file` tag, its positions pointing into the included file."""
        tag = positions.values.get(doc_path)
        at = (file, tag.location.line, tag.location.column) if tag else (file, 1, 1)
        full = (path.parent / target).resolve()
        before = len(self.diagnostics)
        try:
            if not full.is_relative_to(self.root):  # checked here to name the target as written
                self.diagnostics.append(
                    error(
                        f"!file {target} is outside the project directory",
                        f"every file a config names must be inside {self.root} (symlinks are followed "
                        "first); copy the file into the project",
                        file=at[0],
                        line=at[1],
                        column=at[2],
                        path=doc_path,
                    )
                )
                return None
            return self._included(full, target, at, doc_path, positions, seen)
        finally:
            if tag is None:  # the tag's own line was not recorded: what was said about it is only approximate
                self.diagnostics[before:] = [replace(d, placed=False) for d in self.diagnostics[before:]]

    def _included(
        self,
        full: Path,
        target: str,
        at: tuple[str, int, int],
        doc_path: FieldPath,
        positions: Positions,
        seen: frozenset[Path],
    ) -> Any:
        if full in seen:
            self.diagnostics.append(
                error(
                    f"!file {target} includes itself",
                    "remove the cycle",
                    file=at[0],
                    line=at[1],
                    column=at[2],
                )
            )
            return None
        doc = self.read(full, at)
        if doc is None:
            return None
        for sub, written in doc.positions.values.items():
            positions.values[(*doc_path, *sub)] = written
        for sub, written in doc.positions.keys.items():
            positions.keys[(*doc_path, *sub)] = written
        positions.complete = positions.complete and doc.positions.complete
        return doc.value


def yaml_error(file: str, text: str, exc: yaml.YAMLError) -> Diagnostic:
    if isinstance(exc, yaml.reader.ReaderError):  # a character YAML does not allow: placed by its offset
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        char = exc.character if isinstance(exc.character, int) else ord(exc.character)
        return error(
            f"malformed YAML: character U+{char:04X} at line {line}, column {column}: {exc.reason}",
            'remove the character, or write it escaped inside a double-quoted string (e.g. "\\0")',
            file=file,
            line=line,
            column=column,
        )
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        context = f" {exc.context}" if exc.context and exc.problem else ""
        return error(
            f"malformed YAML: {problem}{context}",
            "fix the syntax at this position (indentation, quoting, a missing ':' or a duplicate key)",
            file=file,
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
        )
    return error(f"malformed YAML: {exc}", "fix the file's syntax", file=file)
