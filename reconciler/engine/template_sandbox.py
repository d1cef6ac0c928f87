"""The sandbox job templates render in, and parsing one template string (SPEC §1, Security).

Owns the restricted jinja2 environment: only `{{ expression }}` (no statements, no calls), no attribute or
item names starting with `_`, a small set of filters, bounded `*`/`**`/`+`/`~`/output sizes, `{{ $VAR }}`
read as one environment variable and never one of wp's own credentials; and `compile_text`, which parses
and vets one string of a job_configuration once (cached), refusing with a reason a user can act on.
So a template can neither reach Python internals nor exhaust the machine. Rendering, layering and
validating job variables are `reconciler.engine.template` and `reconciler.engine.template_variables`.

Must never do I/O, read the clock or `os.environ`.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import ChainableUndefined, TemplateError, Undefined, meta, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.environment import Template
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from reconciler.engine import template_sizes
from reconciler.model import is_secret_key

Path = tuple[str | int, ...]

_MAX_POWER_BITS = 4096
_MAX_NESTING = 40  # levels of operators, calls and brackets in one template string
ENV_NAME = "__env__"
# wp's own credentials: a template that reads them would hand the server's or worker's secret to every job
WP_CREDENTIALS = frozenset({"WP_API_KEY", "WP_DATABASE_URL", "WP_SYNC_WEBHOOK_SECRET", "WP_SYNC_GIT_TOKEN"})
_EXPRESSION = re.compile(r"\{\{(.*?)\}\}", re.S)
_ENV_REF = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_SAFE_FILTERS = (
    "abs", "capitalize", "count", "d", "default", "first", "float", "int", "join", "last", "length", "list",
    "lower", "max", "min", "reverse", "round", "sort", "string", "title", "tojson", "trim", "unique", "upper",
)  # fmt: skip
_ALLOWED_NODES: tuple[type[nodes.Node], ...] = (
    nodes.Template, nodes.Output, nodes.TemplateData, nodes.Name, nodes.Getattr, nodes.Getitem, nodes.Slice,
    nodes.Const, nodes.List, nodes.Tuple, nodes.Dict, nodes.Pair, nodes.Keyword, nodes.Filter, nodes.Test,
    nodes.CondExpr, nodes.Compare, nodes.Operand, nodes.And, nodes.Or, nodes.Not, nodes.Neg, nodes.Pos,
    nodes.Concat, nodes.Add, nodes.Sub, nodes.Mul, nodes.Div, nodes.FloorDiv, nodes.Mod, nodes.Pow,
)  # fmt: skip


class Refused(Exception):
    """A template uses something the sandbox does not allow, or cannot be parsed."""


# ---------------------------------------------------------------------------------------------- the sandbox


def _check_power(left: Any, right: Any) -> None:
    big = isinstance(left, int) and isinstance(right, int) and abs(left) > 1
    if big and abs(right) * max(left.bit_length(), 1) > _MAX_POWER_BITS:
        raise SecurityError("a power in the template is too large")


class _Codegen(CodeGenerator):
    """jinja2's code generator with `a ~ b` built by `template_sizes.concat`, which refuses before building
    a string past MAX_TEXT (jinja2 itself joins whatever the parts are)."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        # each part as a function, so a part is built only while the text so far is short enough
        self.write("environment.bounded_concat((")
        for arg in node.nodes:
            self.write("lambda: ")
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class _Sandbox(SandboxedEnvironment):
    """jinja2's sandbox plus bounds on `*`, `+`, `~`, `**` and `%` (sizes checked on the inputs, before the
    value is built), and key-first lookup of `a.b` on mappings."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})
    code_generator_class = _Codegen
    bounded_concat = staticmethod(template_sizes.concat)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "%" and isinstance(left, str):
            raise SecurityError("string formatting with % is not allowed in templates")
        if operator == "**":
            _check_power(left, right)
        if operator == "*":
            template_sizes.check_repeat(left, right)
        if operator == "+":
            template_sizes.check_add(left, right)
        return super().call_binop(context, operator, left, right)

    def getattr(self, obj: Any, attribute: str) -> Any:
        # `{{ env.items }}` means the env entry named "items", never the dict method.
        if isinstance(obj, Mapping) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)


def _finalize(value: Any) -> Any:
    """How a value inside longer text prints: unset and null as "", containers and booleans as JSON."""
    if value is None or isinstance(value, Undefined):
        return ""
    if isinstance(value, bool | dict | list):
        return json.dumps(value)
    return value


def _make_env() -> _Sandbox:
    env = _Sandbox(
        undefined=ChainableUndefined,
        finalize=_finalize,
        autoescape=False,
        keep_trailing_newline=True,
        # Only `{{ }}` is template syntax: `{% %}` and `{# #}` stay literal text (shell `${#x}` is common).
        block_start_string="\x00{%",
        block_end_string="%}\x00",
        comment_start_string="\x00{#",
        comment_end_string="#}\x00",
    )
    env.filters = {name: env.filters[name] for name in _SAFE_FILTERS if name in env.filters}
    env.filters["join"] = template_sizes.bounded_join(env.filters["join"])
    env.filters["tojson"] = template_sizes.bounded_tojson(env.filters["tojson"])
    env.filters["string"] = template_sizes.bounded_string
    env.globals = {}
    return env


SANDBOX = _make_env()


# ---------------------------------------------------------------------------------------------- parsing


def _rewrite_env_refs(text: str) -> str:
    """`{{ $VAR }}` is not jinja syntax: read it as `__env__['VAR']`."""

    def inner(m: re.Match[str]) -> str:
        return "{{" + _ENV_REF.sub(lambda v: f"{ENV_NAME}['{v.group(1)}']", m.group(1)) + "}}"

    return _EXPRESSION.sub(inner, text)


def _depth(ast: nodes.Node) -> int:
    """How deeply the expressions of a parsed template nest (iteratively: a deep one must not recurse)."""
    deepest, stack = 0, [(ast, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > _MAX_NESTING:
            break
        stack.extend((child, depth + 1) for child in node.iter_child_nodes())
    return deepest


def _refuse_unsafe(ast: nodes.Node) -> None:
    if _depth(ast) > _MAX_NESTING:
        # jinja2 compiles each level again and again (constant folding) and Python refuses ~200 levels
        raise Refused(f"a placeholder nests more than {_MAX_NESTING} levels of expressions; write it flatter")
    # `{{ $VAR }}` becomes `__env__['VAR']`: one variable. `__env__` alone (or any other name starting
    # with `__`) would print the worker's whole environment, its API key and database URL included.
    reads_one = {
        id(n.node)
        for n in ast.find_all(nodes.Getitem)
        if _is_env_node(n.node) and isinstance(n.arg, nodes.Const) and isinstance(n.arg.value, str)
    }
    for item in ast.find_all(nodes.Getitem):
        if id(item.node) in reads_one and is_wp_credential(str(item.arg.value)):  # type: ignore[attr-defined]
            raise Refused(
                f"{{{{ ${item.arg.value} }}}} would hand wp's own credential to the job (its API key, "  # type: ignore[attr-defined]
                "database URL or sync secrets); pass the job a credential of its own, e.g. a Kubernetes "
                "Secret or a variable of the job's environment that is not a WP_ setting"
            )
    for name in ast.find_all(nodes.Name):
        if name.name.startswith("__") and id(name) not in reads_one:
            raise Refused(
                f"the name {name.name!r} is not allowed in a job template (names starting with __); "
                "read one environment variable with {{ $VAR }}"
            )
    for node in ast.find_all(nodes.Node):
        if not isinstance(node, _ALLOWED_NODES):
            what = "function calls" if isinstance(node, nodes.Call) else f"{type(node).__name__} expressions"
            raise Refused(f"{what} are not allowed in a job template; use {{{{ variable }}}} placeholders")
        if isinstance(node, nodes.Getattr) and node.attr.startswith("_"):
            raise Refused(f"attribute {node.attr!r} is not allowed in a job template (names starting with _)")
        if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            key = node.arg.value
            if isinstance(key, str) and key.startswith("_") and not _is_env_node(node.node):
                raise Refused(f"item {key!r} is not allowed in a job template (names starting with _)")


def is_wp_credential(name: str) -> bool:
    """Whether environment variable `name` is one of wp's own credentials (WP_CREDENTIALS, or any WP_ name
    that looks secret: *_KEY, *_TOKEN, *_SECRET, *PASSWORD*)."""
    upper = name.upper()
    return upper in WP_CREDENTIALS or (upper.startswith("WP_") and is_secret_key(upper))


def _is_env_node(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Name) and node.name == ENV_NAME


@dataclass(frozen=True)
class Compiled:
    names: frozenset[str]  # top-level names the text reads, `__env__` excluded
    template: Template
    expression: Callable[..., Any] | None  # set when the text is exactly one `{{ expression }}`


@functools.lru_cache(maxsize=4096)
def compile_text(text: str) -> Compiled:
    """Parse and vet one string of a job_configuration. Raises Refused with a user-facing reason."""
    source = _rewrite_env_refs(text)
    try:
        ast = SANDBOX.parse(source)
        _refuse_unsafe(ast)
        names = frozenset(meta.find_undeclared_variables(ast)) - {ENV_NAME}
        template = SANDBOX.from_string(ast)
        expression = None
        outputs = [n for n in ast.body if isinstance(n, nodes.Output)]
        single = len(ast.body) == 1 and len(outputs) == 1 and len(outputs[0].nodes) == 1
        if single and not isinstance(outputs[0].nodes[0], nodes.TemplateData):
            inner = source.strip()[2:-2].strip("-+")
            expression = SANDBOX.compile_expression(inner, undefined_to_none=False)
    except TemplateError as exc:
        raise Refused(f"invalid placeholder syntax in {text!r}: {exc.message}") from None
    except (RecursionError, SyntaxError, MemoryError):
        # jinja2 parses and compiles recursively, and Python refuses deeply nested generated code
        raise Refused(f"a placeholder nests too deeply in {excerpt(text)}: write it flatter") from None
    return Compiled(names, template, expression)


def excerpt(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:77] + "...")


def has_placeholder(value: str) -> bool:
    return "{{" in value


def placeholder_strings(value: Any, path: Path = ()) -> Iterator[tuple[Path, str]]:
    """Every string holding a placeholder in a JSON value, with its path."""
    if isinstance(value, str):
        if has_placeholder(value):
            yield path, value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from placeholder_strings(v, (*path, str(k)))
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield from placeholder_strings(v, (*path, i))
