"""Values of HCL blocks: what wp's Terraform reader evaluates, and how.

Owns one parsed top-level block (`Block`: labels, raw attributes, where each was written), the scope that
`var.NAME` (from `TF_VAR_NAME` or the default), `local.NAME` and references to other wp resources' attributes
resolve in, and `evaluate`: literals, heredocs, `${...}` interpolation and `jsonencode(...)` to plain values.
Anything else is an `EvalError` that says what to write instead. Reading files into blocks is
`reconciler.config.hcl`. Must never read os.environ (the scope carries `env`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import hcl2

from reconciler.config.hcl_export import flow_of
from reconciler.config.sources import Location

POOL, QUEUE, DEPLOYMENT = "wp_work_pool", "wp_work_queue", "wp_deployment"
_REFERENCE = re.compile(r"^(var|local)\.([A-Za-z_][\w-]*)$|^(wp_\w+)\.([A-Za-z_][\w-]*)\.(\w+)$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?([eE][+-]?\d+)?$")
_HEREDOC = re.compile(r"^<<(-?)([A-Za-z_]\w*)\n(.*?)\n?[ \t]*\2$", re.DOTALL)
HCL_OPTIONS = hcl2.SerializationOptions(
    with_comments=False,
    strip_string_quotes=True,
    preserve_heredocs=True,  # its own heredoc handling escapes quotes; we read heredocs ourselves
    preserve_scientific_notation=False,
)


class EvalError(ValueError):
    """An expression wp does not evaluate, or a value it cannot have."""


@dataclass
class Block:
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


@dataclass
class Scope:
    """What `var.`, `local.` and resource references resolve to."""

    env: Mapping[str, str]
    variables: dict[str, Block]
    locals: dict[str, Any]
    resources: dict[str, Block]  # "wp_work_pool.prod" -> block
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
            return identity(kind, {k: evaluate(v, self) for k, v in block.attrs.items()})
        if attr == "flow" and kind == DEPLOYMENT and "flow" not in block.attrs:
            return flow_of(evaluate(block.attrs.get("entrypoint"), self))
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


def identity(kind: str, attrs: Mapping[str, Any]) -> str:
    if kind == POOL:
        return str(attrs.get("name"))
    if kind == QUEUE:
        return f"{attrs.get('work_pool')}/{attrs.get('name')}"
    flow = attrs.get("flow") or flow_of(attrs.get("entrypoint"))
    return f"{flow}/{attrs.get('name')}"


def evaluate(value: Any, scope: Scope) -> Any:
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


def _template(text: str, scope: Scope) -> Any:
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


def _expression(expr: str, scope: Scope) -> Any:
    if expr.startswith("jsonencode(") and expr.endswith(")"):
        inner = hcl2.loads(f"v = {expr[len('jsonencode(') : -1]}\n", serialization_options=HCL_OPTIONS)
        return json.dumps(evaluate(inner["v"], scope), separators=(",", ":"), sort_keys=True)
    if _NUMBER.match(expr):
        number = float(expr)
        return int(number) if number.is_integer() and "." not in expr and "e" not in expr.lower() else number
    if expr in ("true", "false", "null"):
        return {"true": True, "false": False, "null": None}[expr]
    return scope.lookup(expr)
