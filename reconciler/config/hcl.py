"""Terraform HCL (`*.tf`) as wp configuration: read the wp provider's resources, and write them back.

Owns reading the `*.tf` files at the top of a project directory into the raw document shape of wp.yaml
(`work_pools` with their `queues`, `deployments`) with file:line positions, the small part of HCL such files
use (literals, heredocs, `jsonencode(...)`, `var.NAME` from `TF_VAR_NAME` or the variable's default,
`local.NAME`, references to attributes of other wp resources), the project Terraform applies as (the
`provider "wp" { project = ... }` attribute, default "terraform"), and `export_tf`.

Ownership across tools: both tools record the same owner, so an object applied by one is in sync for the
other. A directory with only `*.tf` files is a project named by its provider block; next to wp.yaml, the two
project names must agree (a diagnostic says so when they do not).

Must never read os.environ (the caller passes `env`), talk to the store or write files.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2
from lark import Tree
from lark.exceptions import LarkError

from reconciler.config.inputs import note_read
from reconciler.config.sources import Location, Positions, Written
from reconciler.config.sources import Path as FieldPath
from reconciler.diagnostics import Diagnostic, error, warning
from reconciler.model import Deployment, WorkPool, WorkQueue, default_flow_name

__all__ = ["TERRAFORM_PROJECT", "TfDocument", "export_tf", "load_tf", "project_mismatch"]

TERRAFORM_PROJECT = "terraform"  # the provider's default `project`
PROVIDER_SOURCE = "wp-gitops/wp"
POOL, QUEUE, DEPLOYMENT = "wp_work_pool", "wp_work_queue", "wp_deployment"
JSON_ATTRIBUTES = frozenset({"base_job_template", "job_variables", "parameters", "pull_steps"})
_META_ARGUMENTS = frozenset({"lifecycle", "depends_on", "provider"})
_OPTIONS = hcl2.SerializationOptions(
    with_comments=False,
    strip_string_quotes=True,
    preserve_heredocs=True,  # its own heredoc handling escapes quotes; we read heredocs ourselves
    preserve_scientific_notation=False,
)
_REFERENCE = re.compile(r"^(var|local)\.([A-Za-z_][\w-]*)$|^(wp_\w+)\.([A-Za-z_][\w-]*)\.(\w+)$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?([eE][+-]?\d+)?$")
_HEREDOC = re.compile(r"^<<(-?)([A-Za-z_]\w*)\n(.*?)\n?[ \t]*\2$", re.DOTALL)


def _fields(model: Any) -> frozenset[str]:
    return frozenset(model.model_fields)


ATTRIBUTES: dict[str, frozenset[str]] = {
    POOL: _fields(WorkPool),
    QUEUE: _fields(WorkQueue),
    DEPLOYMENT: _fields(Deployment),
}


@dataclass
class TfDocument:
    """The wp resources of a directory's `*.tf` files as one raw document (only work_pools/deployments)."""

    value: dict[str, Any]
    positions: Positions
    project: str
    project_at: Location | None  # where `project` was written; None = the provider's default
    files: list[str]


class EvalError(ValueError):
    """An expression wp does not evaluate, or a value it cannot have."""


# ------------------------------------------------------------------------------------------- positions
@dataclass
class _Block:
    """One top-level block: its labels, its attributes' raw values and where everything was written."""

    kind: str
    labels: tuple[str, ...]
    file: str
    at: tuple[int, int]
    attrs: dict[str, Any] = field(default_factory=dict)
    attr_at: dict[str, tuple[int, int]] = field(default_factory=dict)
    items_at: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # tuple elements
    blocks: dict[str, dict[str, Any]] = field(default_factory=dict)  # nested blocks (lifecycle)

    @property
    def address(self) -> str:
        return ".".join(self.labels)

    def location(self, attr: str | None = None, item: int | None = None) -> Location:
        line, col = self.at
        if attr is not None and attr in self.attr_at:
            line, col = self.attr_at[attr]
            items = self.items_at.get(attr, [])
            if item is not None and item < len(items):
                line, col = items[item]
        return Location(self.file, line, col)


def _text(tree: Any) -> str:
    """The text of an identifier or string label node."""
    if isinstance(tree, Tree):
        return "".join(_text(c) for c in tree.children if not (isinstance(c, str) and c == '"'))
    return str(tree)


def _positions_of(tree: Tree[Any]) -> Iterator[tuple[str, tuple[str, ...], tuple[int, int], dict[str, Any]]]:
    """(block kind, labels, (line, col), {attr: (line, col) | [(line, col) per tuple element]})."""
    body = next(c for c in tree.children if isinstance(c, Tree) and c.data == "body")
    for block in body.children:
        if not isinstance(block, Tree) or block.data != "block":
            continue
        kind = _text(block.children[0])
        labels = tuple(_text(c) for c in block.children[1:] if isinstance(c, Tree) and c.data == "string")
        inner = next(c for c in block.children if isinstance(c, Tree) and c.data == "body")
        attrs: dict[str, Any] = {}
        for node in inner.children:
            if isinstance(node, Tree) and node.data == "attribute":
                name = _text(node.children[0])
                attrs[name] = (node.meta.line, node.meta.column)
                attrs[f"{name}[]"] = _tuple_items(node.children[-1])
        yield kind, labels, (block.meta.line, block.meta.column), attrs


def _tuple_items(expr: Any) -> list[tuple[int, int]]:
    if isinstance(expr, Tree) and expr.data == "expr_term" and expr.children:
        inner = expr.children[0]
        if isinstance(inner, Tree) and inner.data == "tuple":
            return [
                (c.meta.line, c.meta.column)
                for c in inner.children
                if isinstance(c, Tree) and c.data != "new_line_or_comment" and not c.meta.empty
            ]
    return []


def _read_file(path: Path, name: str) -> tuple[list[_Block], list[Diagnostic]]:
    try:
        raw = path.read_bytes()
        note_read(path, raw)
        # universal newlines, as Path.read_text reads them
        text = raw.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    except (OSError, UnicodeDecodeError) as exc:
        return [], [error(f"file '{name}' cannot be read: {exc}", file=name)]
    try:
        data = hcl2.loads(text, serialization_options=_OPTIONS)
        tree = hcl2.parses_to_tree(text)
    except (LarkError, ValueError) as exc:
        line = getattr(exc, "line", None)
        column = getattr(exc, "column", None)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return [], [
            error(
                f"malformed HCL: {first}",
                "fix the syntax (`terraform validate` shows the same problem)",
                file=name,
                line=line if isinstance(line, int) and line > 0 else None,
                column=column if isinstance(column, int) and column > 0 else None,
            )
        ]
    located = list(_positions_of(tree))
    return _blocks(data, located, name), []


def _blocks(data: Mapping[str, Any], located: list[Any], name: str) -> list[_Block]:
    """hcl2's dict form joined with the positions read from the parse tree, block by block in file order."""
    values: list[tuple[str, tuple[str, ...], dict[str, Any]]] = []
    for kind, entries in data.items():
        for entry in entries if isinstance(entries, list) else [entries]:
            values.extend((kind, labels, body) for labels, body in _unnest(entry, ()))
    out = []
    for kind, labels, at, attr_at in located:
        match = next((v for v in values if v[0] == kind and v[1] == labels), None)
        body = match[2] if match else {}
        if match:
            values.remove(match)
        block = _Block(kind, labels, name, at)
        for key, value in body.items():
            if key.startswith("__"):
                continue
            if isinstance(value, list) and value and all(_is_block(v) for v in value):
                block.blocks[key] = {k: v for k, v in value[0].items() if not k.startswith("__")}
            else:
                block.attrs[key] = value
        block.attr_at = {k: v for k, v in attr_at.items() if not k.endswith("[]")}
        block.items_at = {k[:-2]: v for k, v in attr_at.items() if k.endswith("[]")}
        out.append(block)
    return out


def _is_block(value: Any) -> bool:
    return isinstance(value, Mapping) and bool(value.get("__is_block__"))


def _unnest(entry: Any, labels: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], dict[str, Any]]]:
    """`{"wp_work_pool": {"prod": {...block...}}}` → (("wp_work_pool", "prod"), {...})."""
    if not isinstance(entry, Mapping):
        return
    if entry.get("__is_block__") or not entry:
        yield labels, dict(entry)
        return
    for key, value in entry.items():
        yield from _unnest(value, (*labels, key))


# ------------------------------------------------------------------------------------------- evaluation
@dataclass
class _Scope:
    """What `var.`, `local.` and resource references resolve to."""

    env: Mapping[str, str]
    variables: dict[str, _Block]
    locals: dict[str, Any]
    resources: dict[str, _Block]  # "wp_work_pool.prod" -> block
    resolving: set[str] = field(default_factory=set)

    def lookup(self, ref: str) -> Any:
        m = _REFERENCE.match(ref)
        if not m:
            raise EvalError(
                f"wp cannot evaluate `{ref}`: it reads literal values, jsonencode(...), var.NAME, local.NAME "
                "and references to other wp resources' attributes; write a literal value here"
            )
        if ref in self.resolving:
            raise EvalError(f"`{ref}` refers to itself")
        self.resolving.add(ref)
        try:
            if m.group(1) == "var":
                return self._variable(m.group(2))
            if m.group(1) == "local":
                if m.group(2) not in self.locals:
                    raise EvalError(f"local.{m.group(2)} is not declared in a locals block")
                return evaluate(self.locals[m.group(2)], self)
            return self._resource_attribute(m.group(3), m.group(4), m.group(5))
        finally:
            self.resolving.discard(ref)

    def _variable(self, name: str) -> Any:
        block = self.variables.get(name)
        if block is None:
            raise EvalError(f'var.{name} is not declared; add `variable "{name}" {{}}` to a .tf file')
        if f"TF_VAR_{name}" in self.env:
            raw = self.env[f"TF_VAR_{name}"]
            kind = str(block.attrs.get("type", "string")).strip("${}")
            return raw if kind == "string" else _json_or_text(raw)
        if "default" in block.attrs:
            return evaluate(block.attrs["default"], self)
        raise EvalError(
            f"variable {name!r} has no value: set TF_VAR_{name} in the environment or give it a default"
        )

    def _resource_attribute(self, kind: str, label: str, attr: str) -> Any:
        block = self.resources.get(f"{kind}.{label}")
        if block is None:
            raise EvalError(f"{kind}.{label} is not declared in the .tf files of this directory")
        if attr == "id":
            return _identity(kind, {k: evaluate(v, self) for k, v in block.attrs.items()})
        if attr == "flow" and kind == DEPLOYMENT and "flow" not in block.attrs:
            return _flow_of(evaluate(block.attrs.get("entrypoint"), self))
        if attr not in block.attrs:
            raise EvalError(
                f"{kind}.{label}.{attr} is not set in its block, so wp cannot know it at plan time"
            )
        return evaluate(block.attrs[attr], self)


def _json_or_text(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _identity(kind: str, attrs: Mapping[str, Any]) -> str:
    if kind == POOL:
        return str(attrs.get("name"))
    if kind == QUEUE:
        return f"{attrs.get('work_pool')}/{attrs.get('name')}"
    flow = attrs.get("flow") or _flow_of(attrs.get("entrypoint"))
    return f"{flow}/{attrs.get('name')}"


def _flow_of(entrypoint: Any) -> str | None:
    """What the provider computes when `flow` is not set: the entrypoint's function, `_` as `-`."""
    if not isinstance(entrypoint, str) or ":" not in entrypoint:
        return None
    return default_flow_name(entrypoint.rpartition(":")[2])


def evaluate(value: Any, scope: _Scope) -> Any:
    """An hcl2 value (expressions come as `${...}` strings) → a plain value."""
    if isinstance(value, Mapping):
        return {str(k): evaluate(v, scope) for k, v in value.items() if not str(k).startswith("__")}
    if isinstance(value, list):
        return [evaluate(v, scope) for v in value]
    if isinstance(value, str):
        return _template(_heredoc(value), scope)
    return value


def _heredoc(text: str) -> str:
    m = _HEREDOC.match(text)
    if not m:
        return text
    lines = m.group(3).split("\n")
    if m.group(1):  # `<<-` strips the common indentation
        indent = min((len(x) - len(x.lstrip()) for x in lines if x.strip()), default=0)
        lines = [x[indent:] for x in lines]
    return "\n".join(lines) + "\n"


def _template(text: str, scope: _Scope) -> Any:
    """A string with `${...}` interpolations; a string that is exactly one keeps the expression's type.
    `$${` stays as written: config loading turns it into a literal `${`, as Terraform does."""
    if "%{" in text.replace("%%{", ""):
        raise EvalError("template directives (%{ ... }) are not read by wp; write the value literally")
    parts: list[Any] = []
    i = 0
    while i < len(text):
        start = text.find("${", i)
        while start > 0 and text[start - 1] == "$":
            start = text.find("${", start + 2)
        if start < 0:
            parts.append(text[i:])
            break
        end = _closing(text, start + 2)
        parts.append(text[i:start])
        parts.append(_expression(text[start + 2 : end].strip(), scope))
        i = end + 1
    parts = [p for p in parts if p != ""]
    if len(parts) == 1 and not isinstance(parts[0], str):
        return parts[0]
    return "".join(p if isinstance(p, str) else _as_text(p) for p in parts)


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    raise EvalError("only strings, numbers and bools can be interpolated into a string")


def _closing(text: str, i: int) -> int:
    depth, quoted = 1, False
    while i < len(text):
        ch = text[i]
        if ch == "\\" and quoted:
            i += 2
            continue
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "{":
            depth += 1
        elif not quoted and ch == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise EvalError("unterminated ${ ... } interpolation")


def _expression(expr: str, scope: _Scope) -> Any:
    if expr.startswith("jsonencode(") and expr.endswith(")"):
        inner = hcl2.loads(f"v = {expr[len('jsonencode(') : -1]}\n", serialization_options=_OPTIONS)
        return json.dumps(evaluate(inner["v"], scope), separators=(",", ":"), sort_keys=True)
    if _NUMBER.match(expr):
        number = float(expr)
        return int(number) if number.is_integer() and "." not in expr and "e" not in expr.lower() else number
    if expr in ("true", "false", "null"):
        return {"true": True, "false": False, "null": None}[expr]
    return scope.lookup(expr)


# ------------------------------------------------------------------------------------------- documents
class _Builder:
    """Resource blocks → the wp.yaml-shaped document, its positions and diagnostics."""

    def __init__(self, scope: _Scope) -> None:
        self.scope = scope
        self.doc: dict[str, Any] = {"work_pools": [], "deployments": []}
        self.positions = Positions()
        self.diagnostics: list[Diagnostic] = []

    def fail(self, block: _Block, summary: str, detail: str, attr: str | None = None) -> None:
        loc = block.location(attr)
        path: FieldPath = (block.address, attr) if attr else (block.address,)
        self.diagnostics.append(
            error(summary, detail, file=loc.file, line=loc.line, column=loc.column, path=path)
        )

    def values(self, block: _Block) -> dict[str, Any] | None:
        """The block's attributes evaluated, JSON strings decoded; None after a diagnostic."""
        allowed = ATTRIBUTES[block.labels[0]]
        ok = True
        out: dict[str, Any] = {}
        for meta in ("count", "for_each"):
            if meta in block.attrs:
                self.fail(
                    block, f"{block.address} uses {meta}", "wp plans one object per block; list each", meta
                )
                ok = False
        for name, raw in block.attrs.items():
            if name in _META_ARGUMENTS or name in ("count", "for_each"):
                continue
            if name not in allowed:
                self.fail(
                    block,
                    f"{block.labels[0]} has no attribute '{name}'",
                    f"allowed: {', '.join(sorted(allowed))}",
                    name,
                )
                ok = False
                continue
            try:
                value = evaluate(raw, self.scope)
                out[name] = _decode_json(name, value) if name in JSON_ATTRIBUTES else value
            except (EvalError, LarkError) as exc:
                self.fail(block, f"{block.address}.{name}: {exc}", "", name)
                ok = False
        return out if ok else None

    def place(self, path: FieldPath, block: _Block, attr: str | None = None, item: int | None = None) -> None:
        local: FieldPath = (block.address,) if attr is None else (block.address, attr)
        if item is not None:
            local = (*local, item)
        self.positions.values[path] = Written(block.location(attr, item), local)
        self.positions.keys[path] = Written(block.location(attr, item), local)

    def lifecycle(self, block: _Block, doc: dict[str, Any]) -> None:
        life = block.blocks.get("lifecycle") or {}
        if life.get("prevent_destroy") is True:
            doc["protect"] = True
        ignored = life.get("ignore_changes")
        if isinstance(ignored, list) and ignored:
            doc["ignore_changes"] = [str(x).removeprefix("${").removesuffix("}") for x in ignored]
        elif ignored is not None:
            self.fail(block, "ignore_changes = all is not read by wp", "list the attributes instead", None)

    def pool(self, block: _Block) -> None:
        values = self.values(block)
        if values is None:
            return
        i = len(self.doc["work_pools"])
        at: FieldPath = ("work_pools", i)
        self.place(at, block)
        doc = {k: v for k, v in values.items() if v is not None}
        for k in doc:
            self.place((*at, k), block, k)
        doc["queues"] = []
        self.lifecycle(block, doc)
        self.doc["work_pools"].append(doc)

    def queue(self, block: _Block) -> None:
        values = self.values(block)
        if values is None:
            return
        pool = values.pop("work_pool", None)
        index = next((i for i, p in enumerate(self.doc["work_pools"]) if p.get("name") == pool), None)
        if index is None:
            loc = block.location("work_pool")
            self.diagnostics.append(
                warning(
                    f"{block.address}: wp plans a queue together with its pool, and no wp_work_pool in the .tf "
                    f"files declares {pool!r}; wp leaves this queue to Terraform",
                    "declare the pool as a wp_work_pool resource to plan the queue with wp too",
                    file=loc.file,
                    line=loc.line,
                    column=loc.column,
                    path=(block.address, "work_pool"),
                )
            )
            return
        queues = self.doc["work_pools"][index]["queues"]
        at: FieldPath = ("work_pools", index, "queues", len(queues))
        self.place(at, block)
        doc = {k: v for k, v in values.items() if v is not None}
        for k in doc:
            self.place((*at, k), block, k)
        self.lifecycle(block, doc)
        queues.append(doc)

    def deployment(self, block: _Block) -> None:
        values = self.values(block)
        if values is None:
            return
        at: FieldPath = ("deployments", len(self.doc["deployments"]))
        self.place(at, block)
        doc: dict[str, Any] = {}
        ref: dict[str, Any] = {}
        for name, value in values.items():
            if value is None:
                continue
            target = _DEPLOYMENT_PLACES.get(name, (name,))
            if target[0] == "work_pool":
                ref[target[1]] = value
                self.place((*at, *target), block, name)
            else:
                doc[target[0]] = value
                self.place((*at, target[0]), block, name)
        if "flow" not in doc and (flow := _flow_of(doc.get("entrypoint"))) is not None:
            doc["flow"] = flow  # what the provider computes; not the @flow(name=) wp would read
        if ref:
            doc["work_pool"] = ref
            self.place((*at, "work_pool"), block, "work_pool" if "name" in ref else None)
        for k, item in enumerate(doc.get("schedules") or []):
            self.place((*at, "schedules", k), block, "schedules", k)
            if isinstance(item, dict):
                _clean_schedule(item)
        self.lifecycle(block, doc)
        self.doc["deployments"].append(doc)


_DEPLOYMENT_PLACES: dict[str, tuple[str, ...]] = {
    "work_pool": ("work_pool", "name"),
    "work_queue": ("work_pool", "work_queue_name"),
    "job_variables": ("work_pool", "job_variables"),
    "pull_steps": ("pull",),
}


def _clean_schedule(item: dict[str, Any]) -> None:
    """A schedule object as Terraform writes it: unset attributes dropped, `parameters` decoded."""
    for key in [k for k, v in item.items() if v is None]:
        del item[key]
    if isinstance(item.get("parameters"), str):
        item["parameters"] = _decode_json("parameters", item["parameters"])


def _decode_json(name: str, value: Any) -> Any:
    if not isinstance(value, str):
        raise EvalError(f"{name} is a JSON string: write {name} = jsonencode({{ ... }})")
    try:
        return json.loads(value)
    except ValueError as exc:
        raise EvalError(f"{name} is not valid JSON ({exc}); write {name} = jsonencode({{ ... }})") from exc


# ------------------------------------------------------------------------------------------- load_tf
def _provider_project(blocks: list[_Block], scope: _Scope) -> tuple[str, Location | None, list[Diagnostic]]:
    for block in blocks:
        if block.kind == "provider" and block.labels == ("wp",) and "project" in block.attrs:
            loc = block.location("project")
            try:
                value = evaluate(block.attrs["project"], scope)
            except EvalError as exc:
                return (
                    TERRAFORM_PROJECT,
                    loc,
                    [error(f'provider "wp" project: {exc}', file=loc.file, line=loc.line)],
                )
            if isinstance(value, str) and value:
                return value, loc, []
            return (
                TERRAFORM_PROJECT,
                loc,
                [error('provider "wp" project must be a non-empty string', file=loc.file, line=loc.line)],
            )
    return TERRAFORM_PROJECT, None, []


def load_tf(directory: Path, env: Mapping[str, str]) -> tuple[list[TfDocument], list[Diagnostic]]:
    """The wp resources of `directory/*.tf` as one raw document (an empty list when there are none)."""
    files = sorted(p for p in Path(directory).glob("*.tf") if p.is_file())
    blocks: list[_Block] = []
    diagnostics: list[Diagnostic] = []
    for path in files:
        found, notes = _read_file(path, path.name)
        blocks.extend(found)
        diagnostics.extend(notes)
    resources = {
        ".".join(b.labels): b
        for b in blocks
        if b.kind == "resource" and b.labels and b.labels[0] in ATTRIBUTES
    }
    uses_wp = bool(resources) or any(b.kind == "provider" and b.labels == ("wp",) for b in blocks)
    if not uses_wp:
        return [], diagnostics
    local_values: dict[str, Any] = {}
    for b in blocks:
        if b.kind == "locals":
            local_values.update(b.attrs)
    variables = {b.labels[0]: b for b in blocks if b.kind == "variable" and b.labels}
    scope = _Scope(env, variables, local_values, resources)
    project, project_at, notes = _provider_project(blocks, scope)
    builder = _Builder(scope)
    builder.diagnostics.extend(notes)
    order = (POOL, QUEUE, DEPLOYMENT)  # pools first: queues join their pool's document
    for kind in order:
        for block in resources.values():
            if block.labels[0] == kind:
                getattr(builder, {POOL: "pool", QUEUE: "queue", DEPLOYMENT: "deployment"}[kind])(block)
    value = {k: v for k, v in builder.doc.items() if v}
    names = sorted({b.file for b in resources.values()} | ({project_at.file} if project_at else set()))
    document = TfDocument(value, builder.positions, project, project_at, names or [files[0].name])
    return [document], [*diagnostics, *builder.diagnostics]


def project_mismatch(yaml_project: Any, tf: TfDocument) -> Diagnostic | None:
    """An error when wp.yaml's `project` is not the one Terraform applies the *.tf resources as."""
    if not isinstance(yaml_project, str) or yaml_project == tf.project:
        return None
    where = tf.project_at or Location(tf.files[0], 1, 1)
    how = "is" if tf.project_at else f"defaults to {TERRAFORM_PROJECT!r} and"
    return error(
        f'wp.yaml says project {yaml_project!r}, but the provider "wp" project {how} {tf.project!r}',
        f"both tools must record the same owner, or each apply takes the objects from the other: set "
        f'project = "{yaml_project}" in the provider "wp" block (or change wp.yaml\'s project)',
        file=where.file,
        line=where.line,
        column=where.column,
        path=("provider.wp", "project"),
    )


# ------------------------------------------------------------------------------------------- export_tf
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_ENV_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")


def _label(name: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_").lower() or "x"
    base = f"r_{base}" if base[0].isdigit() else base
    label, n = base, 2
    while label in taken:
        label, n = f"{base}_{n}", n + 1
    taken.add(label)
    return label


class _Writer:
    """HCL text for values; `${VAR}` secret references become `var.VAR` (sensitive variables)."""

    def __init__(self) -> None:
        self.variables: set[str] = set()

    def value(self, v: Any, indent: int) -> str:
        pad = "  " * indent
        if v is None:
            return "null"
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return json.dumps(v)
        if isinstance(v, str):
            m = _ENV_REF.match(v)
            if m:
                self.variables.add(m.group(1))
                return f"var.{m.group(1)}"
            return self.string(v)
        if isinstance(v, list | tuple):
            if not v:
                return "[]"
            inner = ",\n".join(f"{pad}  {self.value(x, indent + 1)}" for x in v)
            return f"[\n{inner},\n{pad}]"
        if isinstance(v, Mapping):
            if not v:
                return "{}"
            lines = [f"{pad}  {self.key(k)} = {self.value(x, indent + 1)}" for k, x in v.items()]
            return "{\n" + "\n".join(lines) + f"\n{pad}}}"
        raise TypeError(f"cannot write {type(v).__name__} as HCL")

    @staticmethod
    def key(k: Any) -> str:
        k = str(k)
        return k if _IDENT.match(k) and k not in ("null", "true", "false") else _Writer.string(k)

    @staticmethod
    def string(s: str) -> str:
        s = json.dumps(s, ensure_ascii=False)  # quotes, backslashes, control characters
        return s.replace("${", "$${").replace("%{", "%%{")

    def attribute(self, name: str, value: Any, width: int) -> str:
        text = f"jsonencode({self.value(value, 1)})" if name in JSON_ATTRIBUTES else self.value(value, 1)
        return f"  {name.ljust(width)} = {text}"

    def block(self, header: str, attrs: list[tuple[str, Any]]) -> str:
        width = max((len(n) for n, _ in attrs), default=0)
        body = "\n".join(self.attribute(n, v, width) for n, v in attrs)
        return f"{header} {{\n{body}\n}}\n"


def _pool_attrs(pool: Mapping[str, Any]) -> list[tuple[str, Any]]:
    names = ("name", "type", "description", "paused", "concurrency_limit", "base_job_template")
    return [(n, pool[n]) for n in names if pool.get(n) is not None]


def _deployment_attrs(dep: Mapping[str, Any], pools: Mapping[str, str]) -> list[tuple[str, Any]]:
    ref = dep.get("work_pool") or {}
    out: list[tuple[str, Any]] = [
        (n, dep[n]) for n in ("name", "flow", "entrypoint") if dep.get(n) is not None
    ]
    if ref.get("name") is not None:
        pool = ref["name"]
        out.append(("work_pool", _Ref(f"wp_work_pool.{pools[pool]}.name") if pool in pools else pool))
    if ref.get("work_queue_name") is not None:
        out.append(("work_queue", ref["work_queue_name"]))
    if ref.get("job_variables"):
        out.append(("job_variables", ref["job_variables"]))
    for name in ("parameters", "tags", "description", "paused", "concurrency_limit", "version"):
        if dep.get(name) not in (None, {}, []):
            out.append((name, dep[name]))
    if dep.get("pull"):
        out.append(("pull_steps", dep["pull"]))
    if dep.get("schedules"):
        out.append(("schedules", [_schedule_object(s) for s in dep["schedules"]]))
    return out


def _schedule_object(schedule: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in schedule.items() if v is not None and k != "parameters"}
    if schedule.get("parameters"):
        out["parameters"] = _Ref(f"jsonencode({_Writer().value(schedule['parameters'], 3)})")
    return out


class _Ref(str):
    """An expression written as is (a reference or a function call), not as a quoted string."""


class _ExportWriter(_Writer):
    def value(self, v: Any, indent: int) -> str:
        if isinstance(v, _Ref):
            return str(v)
        return super().value(v, indent)


def export_tf(document: Mapping[str, Any]) -> str:
    """A wp.yaml-shaped document (work_pools with queues, deployments) as Terraform configuration, with an
    `import` block per object so that `terraform apply` adopts the live objects instead of creating them."""
    w = _ExportWriter()
    taken: set[str] = set()
    parts: list[str] = []
    imports: list[str] = []
    pools: dict[str, str] = {}
    for pool in document.get("work_pools") or []:
        label = pools[pool["name"]] = _label(pool["name"], taken)
        parts.append(w.block(f'resource "wp_work_pool" "{label}"', _pool_attrs(pool)))
        imports.append(_import("wp_work_pool", label, pool["name"]))
        for queue in pool.get("queues") or []:
            qlabel = _label(f"{pool['name']}_{queue['name']}", taken)
            attrs: list[tuple[str, Any]] = [("work_pool", _Ref(f"wp_work_pool.{label}.name"))]
            attrs += [
                (n, queue[n])
                for n in ("name", "priority", "concurrency_limit", "paused", "description")
                if queue.get(n) is not None
            ]
            parts.append(w.block(f'resource "wp_work_queue" "{qlabel}"', attrs))
            imports.append(_import("wp_work_queue", qlabel, f"{pool['name']}/{queue['name']}"))
    for dep in document.get("deployments") or []:
        label = _label(f"{dep.get('flow') or ''}_{dep['name']}", taken)
        parts.append(w.block(f'resource "wp_deployment" "{label}"', _deployment_attrs(dep, pools)))
        flow = dep.get("flow") or _flow_of(dep.get("entrypoint"))
        imports.append(_import("wp_deployment", label, f"{flow}/{dep['name']}"))
    header = _header(document.get("project"))
    variables = [
        f'variable "{name}" {{\n  type      = string\n  sensitive = true\n}}\n'
        for name in sorted(w.variables)
    ]
    return "\n".join([header, *variables, *parts, *imports])


def _import(kind: str, label: str, ident: str) -> str:
    return f"import {{\n  to = {kind}.{label}\n  id = {_Writer.string(ident)}\n}}\n"


def _header(project: Any) -> str:
    project_line = f"  project = {_Writer.string(project)}\n" if isinstance(project, str) else ""
    return (
        "terraform {\n  required_providers {\n"
        f'    wp = {{\n      source = "{PROVIDER_SOURCE}"\n    }}\n'
        "  }\n}\n\n"
        f'provider "wp" {{\n{project_line}}}\n'
    )
