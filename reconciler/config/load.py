"""Reading a project directory: wp.yaml, its `include:` files, `!file` tags, prefect.yaml, entrypoint sources.

Owns the files of the DESIRED side (wp.yaml, its includes, prefect.yaml, *.tf) assembled into one document, and
the `load_project` pipeline (read -> substitute env -> validate structure -> normalize -> validate meaning). One
file's text becomes values in `config.reader` (libyaml, positions kept). Entrypoints are parsed with `ast`: user
code is never imported or run.

Must never write files, read os.environ (the caller passes `env`) or talk to the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.collector import collector_paused
from reconciler.config.entrypoints import check_entrypoints
from reconciler.config.files import FileProblem, confined
from reconciler.config.inputs import glob_files, is_file
from reconciler.config.normalize import substitute_env, to_desired, with_parameter_schemas
from reconciler.config.prefect import convert_prefect_document
from reconciler.config.pull import pull_step_problems
from reconciler.config.reader import FileDoc, FileReader
from reconciler.config.sources import Location, Positions, SourceMap, Written
from reconciler.config.sources import Path as FieldPath
from reconciler.config.validate import validate_config, validate_document
from reconciler.diagnostics import Diagnostic, error, has_errors, sort_diagnostics
from reconciler.model import DesiredState

if TYPE_CHECKING:
    from reconciler.config.hcl import TfDocument

__all__ = ["LoadedConfig", "Location", "SourceMap", "load_project"]

CONFIG_FILE = "wp.yaml"
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


def _merge(base: dict[str, Any], positions: Positions, part: FileDoc, file: str, reader: FileReader) -> None:
    """Append the work_pools/deployments of an include file (or of prefect.yaml) to the merged document."""
    before = len(reader.diagnostics)
    _merge_part(base, positions, part, file, reader)
    positions.complete = positions.complete and part.positions.complete
    if not part.positions.complete:  # placed by the part's positions, which were not recorded
        reader.diagnostics[before:] = [replace(d, placed=False) for d in reader.diagnostics[before:]]


def _merge_part(
    base: dict[str, Any], positions: Positions, part: FileDoc, file: str, reader: FileReader
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


def _matches(reader: FileReader, pattern: str, positions: Positions, at: FieldPath) -> list[Path]:
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


def _includes(reader: FileReader, doc: dict[str, Any], positions: Positions) -> list[Path]:
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


def _read_documents(reader: FileReader, env: Mapping[str, str]) -> tuple[dict[str, Any] | None, Positions]:
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
            _merge(doc, positions, FileDoc(converted, part.positions), PREFECT_FILE, reader)
    _merge_tf(doc, positions, tf_docs, reader)  # *.tf hook
    return doc, positions


# --- *.tf hook: Terraform resources of the wp provider join the document (reconciler.config.hcl) ----------
def _read_tf(reader: FileReader, env: Mapping[str, str]) -> list[TfDocument]:
    if not glob_files(reader.root, "*.tf"):
        return []  # and the HCL parser is not even imported (a tenth of `wp plan`'s imports)
    from reconciler.config.hcl import load_tf

    docs, notes = load_tf(reader.root, env)
    reader.diagnostics.extend(notes)
    reader.substitute = reader.substitute or bool(docs)  # their values are not read as text here
    for tf in docs:
        reader.files.extend(tf.files)
    return docs


def _merge_tf(
    doc: dict[str, Any], positions: Positions, tf_docs: list[TfDocument], reader: FileReader
) -> None:
    if not tf_docs:
        return
    from reconciler.config.hcl import project_mismatch

    for tf in tf_docs:
        if (problem := project_mismatch(doc.get("project"), tf)) is not None:
            reader.diagnostics.append(problem)
        if tf.project_at is not None and ("project",) not in positions.values:
            positions.values[("project",)] = Written(tf.project_at, ("provider.wp", "project"))
        _merge(doc, positions, FileDoc(tf.value, tf.positions), tf.files[0], reader)


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
    reader = FileReader(Path(directory).resolve(), record=record)
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
