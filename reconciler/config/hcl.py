"""Terraform HCL (`*.tf`) as wp configuration: read the wp provider's resources, and write them back.

Owns reading the `*.tf` files at the top of a project directory into the raw document shape of wp.yaml
(`work_pools` with their `queues`, `deployments`) with file:line positions, and the project Terraform applies
as (the `provider "wp" { project = ... }` attribute, default "terraform"). Evaluating the blocks' values is
`reconciler.config.hcl_eval`; writing objects back as HCL is `reconciler.config.hcl_export`.

Ownership across tools: both tools record the same owner, so an object applied by one is in sync for the
other. A directory with only `*.tf` files is a project named by its provider block; next to wp.yaml, the two
project names must agree (a diagnostic says so when they do not).

Must never read os.environ (the caller passes `env`), talk to the store or write files.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hcl2
from lark import Tree
from lark.exceptions import LarkError

from reconciler.config.hcl_eval import (
    DEPLOYMENT,
    HCL_OPTIONS,
    POOL,
    QUEUE,
    Block,
    EvalError,
    Scope,
    evaluate,
)
from reconciler.config.hcl_export import JSON_ATTRIBUTES, flow_of
from reconciler.config.inputs import note_read
from reconciler.config.sources import Location, Positions, Written
from reconciler.config.sources import Path as FieldPath
from reconciler.diagnostics import Diagnostic, error, warning
from reconciler.model import Deployment, WorkPool, WorkQueue

__all__ = ["TERRAFORM_PROJECT", "TfDocument", "load_tf", "project_mismatch"]

TERRAFORM_PROJECT = "terraform"  # the provider's default `project`
_META_ARGUMENTS = frozenset({"lifecycle", "depends_on", "provider"})


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


# ------------------------------------------------------------------------------------------- positions
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


def _read_file(path: Path, name: str) -> tuple[list[Block], list[Diagnostic]]:
    try:
        raw = path.read_bytes()
        note_read(path, raw)
        # universal newlines, as Path.read_text reads them
        text = raw.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    except (OSError, UnicodeDecodeError) as exc:
        return [], [error(f"file '{name}' cannot be read: {exc}", file=name)]
    try:
        data = hcl2.loads(text, serialization_options=HCL_OPTIONS)
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


def _blocks(data: Mapping[str, Any], located: list[Any], name: str) -> list[Block]:
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
        block = Block(kind, labels, name, at)
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


# ------------------------------------------------------------------------------------------- documents
class _Builder:
    """Resource blocks → the wp.yaml-shaped document, its positions and diagnostics."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.doc: dict[str, Any] = {"work_pools": [], "deployments": []}
        self.positions = Positions()
        self.diagnostics: list[Diagnostic] = []

    def fail(self, block: Block, summary: str, detail: str, attr: str | None = None) -> None:
        loc = block.location(attr)
        path: FieldPath = (block.address, attr) if attr else (block.address,)
        self.diagnostics.append(
            error(summary, detail, file=loc.file, line=loc.line, column=loc.column, path=path)
        )

    def values(self, block: Block) -> dict[str, Any] | None:
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

    def place(self, path: FieldPath, block: Block, attr: str | None = None, item: int | None = None) -> None:
        local: FieldPath = (block.address,) if attr is None else (block.address, attr)
        if item is not None:
            local = (*local, item)
        self.positions.values[path] = Written(block.location(attr, item), local)
        self.positions.keys[path] = Written(block.location(attr, item), local)

    def lifecycle(self, block: Block, doc: dict[str, Any]) -> None:
        life = block.blocks.get("lifecycle") or {}
        if life.get("prevent_destroy") is True:
            doc["protect"] = True
        ignored = life.get("ignore_changes")
        if isinstance(ignored, list) and ignored:
            doc["ignore_changes"] = [str(x).removeprefix("${").removesuffix("}") for x in ignored]
        elif ignored is not None:
            self.fail(block, "ignore_changes = all is not read by wp", "list the attributes instead", None)

    def pool(self, block: Block) -> None:
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

    def queue(self, block: Block) -> None:
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

    def deployment(self, block: Block) -> None:
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
        if "flow" not in doc and (flow := flow_of(doc.get("entrypoint"))) is not None:
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
def _provider_project(blocks: list[Block], scope: Scope) -> tuple[str, Location | None, list[Diagnostic]]:
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
    blocks: list[Block] = []
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
    scope = Scope(env, variables, local_values, resources)
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
