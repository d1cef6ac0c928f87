"""Reading a project directory: wp.yaml, its `include:` files, `!file` tags, prefect.yaml, entrypoint sources.

Owns every file read of the DESIRED side and the `load_project` pipeline (read -> substitute env -> validate
structure -> normalize -> validate meaning). libyaml's composer (PyYAML's C loader) parses, fast, and its nodes keep
the line and column of every value; merge keys, `!file` tags and duplicate keys are handled here while walking them.
Entrypoints are parsed with `ast`: user code is never imported or run.

Must never write files, read os.environ (the caller passes `env`) or talk to the store.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from reconciler.collector import collector_paused
from reconciler.config.entrypoints import check_entrypoints
from reconciler.config.files import FileProblem, confined, read_text
from reconciler.config.inputs import glob_files, is_file
from reconciler.config.normalize import substitute_env, to_desired, with_parameter_schemas
from reconciler.config.prefect import convert_prefect_document
from reconciler.config.pull import pull_step_problems
from reconciler.config.sources import Location, Positions, SourceMap, Written
from reconciler.config.sources import Path as FieldPath
from reconciler.config.validate import validate_config, validate_document
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
from reconciler.diagnostics import Diagnostic, error, has_errors, sort_diagnostics
from reconciler.model import DesiredState

if TYPE_CHECKING:
    from reconciler.config.hcl import TfDocument

__all__ = ["LoadedConfig", "Location", "SourceMap", "load_project"]

CONFIG_FILE = "wp.yaml"
# Files up to this size are read with positions even when positions are not asked for: recording costs little
# there, and a warning in a small prefect.yaml (ignored `build:` keys) then needs no second load of the project.
ALWAYS_RECORD_BYTES = 64 * 1024
PREFECT_FILE = "prefect.yaml"
_LISTS = ("work_pools", "deployments")


@dataclass(frozen=True)
class LoadedConfig:
    desired: DesiredState | None  # None when there are errors
    diagnostics: list[Diagnostic]  # errors and warnings, sorted by file and line
    sources: SourceMap
    files: list[str]  # every file read, relative to the project directory
    # False when a large file was read without positions (load_project(positions=False) of a clean project):
    # `sources` cannot place diagnostics then, and a caller with some to report must load again with them.
    positioned: bool = True
    # The desired state built from the sound parts of a config that has errors, so that checks which need it
    # (pools in the store) still run and every error is reported in one go; never planned or applied.
    partial: DesiredState | None = None


@dataclass
class _FileDoc:
    value: Any
    positions: Positions


@dataclass
class _Reader:
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

    def read(self, path: Path, at: tuple[str, int, int] | None = None) -> _FileDoc | None:
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
                return _FileDoc(value, positions)
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
            self.diagnostics.append(_yaml_error(name, text, exc))
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
        return _FileDoc(value, positions)

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


def _yaml_error(file: str, text: str, exc: yaml.YAMLError) -> Diagnostic:
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


def _merge(base: dict[str, Any], positions: Positions, part: _FileDoc, file: str, reader: _Reader) -> None:
    """Append the work_pools/deployments of an include file (or of prefect.yaml) to the merged document."""
    before = len(reader.diagnostics)
    _merge_part(base, positions, part, file, reader)
    positions.complete = positions.complete and part.positions.complete
    if not part.positions.complete:  # placed by the part's positions, which were not recorded
        reader.diagnostics[before:] = [replace(d, placed=False) for d in reader.diagnostics[before:]]


def _merge_part(
    base: dict[str, Any], positions: Positions, part: _FileDoc, file: str, reader: _Reader
) -> None:
    if not isinstance(part.value, dict):
        if part.value is not None:
            reader.diagnostics.append(
                error(
                    f"'{file}' must be a mapping with work_pools and/or deployments",
                    file=file,
                    line=1,
                    column=1,
                )
            )
        return
    for key in part.value:
        if key not in _LISTS:
            where, _ = part.positions.where((key,), key=True)
            reader.diagnostics.append(
                error(
                    f"unknown field '{key}' in an included file",
                    "included files hold only work_pools and deployments; put other settings in wp.yaml",
                    file=file,
                    line=where.line if where else None,
                    column=where.column if where else None,
                    path=(key,),
                )
            )
    for key in _LISTS:
        items = part.value.get(key)
        if items is None:
            continue
        target = base.setdefault(key, [])
        if not isinstance(items, list) or not isinstance(target, list):
            where, local = part.positions.where((key,))
            reader.diagnostics.append(
                error(
                    f"'{key}' must be a list",
                    f"write {key}: [...]",
                    file=file,
                    line=where.line if where else None,
                    column=where.column if where else None,
                    path=local,
                )
            )
            continue
        offset = len(target)
        target.extend(items)
        _shift(positions.values, part.positions.values, key, offset)
        _shift(positions.keys, part.positions.keys, key, offset)


def _shift(into: dict[FieldPath, Written], source: dict[FieldPath, Written], key: str, offset: int) -> None:
    for path, written in source.items():
        if len(path) >= 2 and path[0] == key and isinstance(path[1], int):
            into[(key, path[1] + offset, *path[2:])] = written


def _matches(reader: _Reader, pattern: str, positions: Positions, at: FieldPath) -> list[Path]:
    """The files an include pattern names inside the project; a pattern or a match that leaves the project
    (absolute, `..`, a symlink pointing out) is an error at the pattern, and its files are not read."""
    if Path(pattern).is_absolute() or ".." in Path(pattern).parts:
        reader.diagnostics.append(
            positions.error(
                f"include pattern '{pattern}' reaches outside the project directory",
                "include patterns are globs relative to wp.yaml, inside the project; copy the files in",
                at,
            )
        )
        return []
    try:
        found = [p for p in glob_files(reader.root, pattern) if p.name != CONFIG_FILE]
    except (ValueError, NotImplementedError) as exc:
        reader.diagnostics.append(
            positions.error(f"include pattern '{pattern}' is not a valid glob: {exc}", "fix the pattern", at)
        )
        return []
    inside: list[Path] = []
    for match in found:
        try:
            confined(reader.root, match, reader.rel(match))
        except FileProblem as exc:
            reader.diagnostics.append(
                positions.error(f"include pattern '{pattern}' matches {exc.summary}", exc.detail, at)
            )
            continue
        inside.append(match)
    return inside


def _includes(reader: _Reader, doc: dict[str, Any], positions: Positions) -> list[Path]:
    patterns = doc.get("include") or []
    if not isinstance(patterns, list):
        return []  # structural validation reports the type
    found: list[Path] = []
    for i, pattern in enumerate(patterns):
        if not isinstance(pattern, str):
            continue
        said = len(reader.diagnostics)
        matches = _matches(reader, pattern, positions, ("include", i))
        if not matches and len(reader.diagnostics) == said:
            reader.diagnostics.append(
                positions.warning(
                    f"include pattern '{pattern}' matches no file",
                    "check the glob; it is relative to wp.yaml",
                    ("include", i),
                )
            )
        found.extend(m for m in matches if m not in found)
    return found


def _read_documents(reader: _Reader, env: Mapping[str, str]) -> tuple[dict[str, Any] | None, Positions]:
    """wp.yaml with its includes, prefect.yaml and the *.tf resources merged into one document."""
    positions = Positions()
    config = reader.root / CONFIG_FILE
    tf_docs = _read_tf(reader, env)  # *.tf hook
    if not is_file(config) and tf_docs:  # *.tf hook: only *.tf files = a project named by the provider
        tf_only: dict[str, Any] = {"project": tf_docs[0].project}
        _merge_tf(tf_only, positions, tf_docs, reader)
        return tf_only, positions
    if not config.is_file():
        reader.diagnostics.append(
            error(
                f"no {CONFIG_FILE} in {reader.root}", "create one (`wp init`) or pass the project directory"
            )
        )
        return None, positions
    main = reader.read(config)
    if main is None:
        return None, positions
    if not isinstance(main.value, dict):
        reader.diagnostics.append(
            error(
                f"{CONFIG_FILE} must be a mapping",
                "start with `project: NAME`",
                file=CONFIG_FILE,
                line=1,
                column=1,
            )
        )
        return None, positions
    doc: dict[str, Any] = main.value
    positions = main.positions
    for path in _includes(reader, doc, positions):
        part = reader.read(path)
        if part is not None:
            _merge(doc, positions, part, reader.rel(path), reader)
    prefect = reader.root / PREFECT_FILE
    if is_file(prefect):
        part = reader.read(prefect)
        if part is not None:
            converted, notes = convert_prefect_document(part.value, part.positions, str(reader.root))
            reader.diagnostics.extend(notes)
            _merge(doc, positions, _FileDoc(converted, part.positions), PREFECT_FILE, reader)
    _merge_tf(doc, positions, tf_docs, reader)  # *.tf hook
    return doc, positions


# --- *.tf hook: Terraform resources of the wp provider join the document (reconciler.config.hcl) ----------
def _read_tf(reader: _Reader, env: Mapping[str, str]) -> list[TfDocument]:
    if not glob_files(reader.root, "*.tf"):
        return []  # and the HCL parser is not even imported (a tenth of `wp plan`'s imports)
    from reconciler.config.hcl import load_tf

    docs, notes = load_tf(reader.root, env)
    reader.diagnostics.extend(notes)
    reader.substitute = reader.substitute or bool(docs)  # their values are not read as text here
    for tf in docs:
        reader.files.extend(tf.files)
    return docs


def _merge_tf(doc: dict[str, Any], positions: Positions, tf_docs: list[TfDocument], reader: _Reader) -> None:
    if not tf_docs:
        return
    from reconciler.config.hcl import project_mismatch

    for tf in tf_docs:
        if (problem := project_mismatch(doc.get("project"), tf)) is not None:
            reader.diagnostics.append(problem)
        if tf.project_at is not None and ("project",) not in positions.values:
            positions.values[("project",)] = Written(tf.project_at, ("provider.wp", "project"))
        _merge(doc, positions, _FileDoc(tf.value, tf.positions), tf.files[0], reader)


# --- end of the *.tf hook ----------------------------------------------------------------------------------


def load_project(directory: str | Path, env: Mapping[str, str], *, positions: bool = True) -> LoadedConfig:
    """Read a project directory into a DesiredState, reporting every error of the config at once.

    With `positions=False` files larger than ALWAYS_RECORD_BYTES are first read without recording where each
    value was written (a fifth of a large project's load), and the project is read again with positions only
    if a diagnostic falls where none were recorded; the diagnostics are the same either way. The SourceMap of
    such a load cannot place anything (`positioned` is False): a caller that may still report problems
    through it reloads with positions when it has some (`pipeline.load_and_check`)."""
    with collector_paused():  # the YAML nodes and positions of a large project are ~1M acyclic objects
        if not positions:
            loaded = _load_project(directory, env, record=False)
            if all(d.placed for d in loaded.diagnostics):
                return loaded
        return _load_project(directory, env, record=True)


def _load_project(directory: str | Path, env: Mapping[str, str], *, record: bool) -> LoadedConfig:
    reader = _Reader(Path(directory).resolve(), record=record)
    raw, positions = _read_documents(reader, env)
    if raw is None:
        return LoadedConfig(
            None, sort_diagnostics(reader.diagnostics), SourceMap(positions), reader.files, positions.complete
        )
    if reader.substitute:
        raw, notes = substitute_env(raw, env, positions)
        reader.diagnostics.extend(notes)
    parsed, notes = validate_document(raw, positions)
    reader.diagnostics.extend(notes)
    checked = check_entrypoints(reader.root, parsed.deployments, positions)
    reader.diagnostics.extend(checked.diagnostics)
    reader.files.extend(reader.rel(path) for path in checked.files)
    flow_names = checked.flow_names
    schemas = {e: f.schema for e, f in checked.functions.items()}
    if not any(f.endswith(".tf") for f in reader.files):
        desired, sources, notes = to_desired(parsed, positions, flow_names, str(reader.root), schemas)
    else:
        desired, sources, notes = to_desired(parsed, positions, flow_names, str(reader.root))
        # Terraform reads no code, so a deployment declared in a .tf file records no schema: both tools agree
        in_tf = {a for a in sources.addresses if (at := sources.locate(a)) and at.file.endswith(".tf")}
        desired = with_parameter_schemas(desired, schemas, skip=in_tf)
    reader.diagnostics.extend(notes)
    reader.diagnostics.extend(validate_config(parsed, desired, positions, flow_names))
    reader.diagnostics.extend(pull_step_problems(parsed.deployments, positions))
    diagnostics = sort_diagnostics(reader.diagnostics)
    desired_or_none = None if has_errors(diagnostics) else desired
    return LoadedConfig(
        desired_or_none, diagnostics, sources, reader.files, positions.complete, partial=desired
    )
