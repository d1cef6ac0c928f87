"""Base job templates: placeholder semantics, job-variable validation, layering and rendering (SPEC §1).

Owns what `{{ placeholders }}` mean in a `job_configuration`: a value that is exactly one placeholder
takes the variable's value with its type, and disappears (dict key removed, list item dropped) when the
variable has no value; a placeholder inside longer text renders as text ("" when unset); `{{ $VAR }}` reads
the `env` mapping passed in. Also owns how job variables layer (schema defaults < deployment < run, `env`
merged key by key) and how they are validated against the pool's JSON Schema (draft 2020-12).

Rendering runs in a jinja2 sandbox restricted further: only `{{ expression }}` (no statements, no calls),
no attribute names starting with `_`, a small set of filters, and bounded `*`/`**`/output sizes, so a
template can neither reach Python internals nor exhaust the machine.

Must never do I/O, read the clock or `os.environ`: the environment is a parameter.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from jinja2 import ChainableUndefined, TemplateError, Undefined, meta, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.environment import Template
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from reconciler.diagnostics import format_path
from reconciler.engine import template_sizes
from reconciler.engine.template_sizes import MAX_TEXT
from reconciler.errors import ValidationError
from reconciler.model import BaseJobTemplate, is_secret_key

if TYPE_CHECKING:
    # jsonschema (with referencing, rpds and the `regex` of patterns.py) is imported where variables are
    # validated: a worker only renders, and those libraries were 5 MB of its memory.
    import jsonschema

Path = tuple[str | int, ...]

# Names a worker passes in `context` (flow_run id/name, ...). They need no declaration in `variables`.
CONTEXT_NAMES: frozenset[str] = frozenset({"flow_run", "deployment", "work_pool", "work_queue", "worker"})
_MAX_POWER_BITS = 4096
_MAX_NESTING = 40  # levels of operators, calls and brackets in one template string
_ENV_NAME = "__env__"
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


@dataclass(frozen=True)
class TemplateProblem:
    """One thing wrong with a template or with job variables; `path` is relative to the checked value."""

    path: Path
    message: str

    def __str__(self) -> str:
        return f"{format_path(self.path)}: {self.message}" if self.path else self.message


class _Unset(Enum):
    """The value of a placeholder whose variable has no value: its key is removed."""

    UNSET = 0


_UNSET = _Unset.UNSET


class _Refused(Exception):
    """A template uses something the sandbox does not allow, or cannot be parsed."""


class _EnvView(dict[str, str]):
    """`{{ $VAR }}` lookups: an unset variable reads as "" (as in the system wp models)."""

    def __missing__(self, key: str) -> str:
        return ""


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


_ENV = _make_env()


# ---------------------------------------------------------------------------------------------- parsing


def _rewrite_env_refs(text: str) -> str:
    """`{{ $VAR }}` is not jinja syntax: read it as `__env__['VAR']`."""

    def inner(m: re.Match[str]) -> str:
        return "{{" + _ENV_REF.sub(lambda v: f"{_ENV_NAME}['{v.group(1)}']", m.group(1)) + "}}"

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
        raise _Refused(
            f"a placeholder nests more than {_MAX_NESTING} levels of expressions; write it flatter"
        )
    # `{{ $VAR }}` becomes `__env__['VAR']`: one variable. `__env__` alone (or any other name starting
    # with `__`) would print the worker's whole environment, its API key and database URL included.
    reads_one = {
        id(n.node)
        for n in ast.find_all(nodes.Getitem)
        if _is_env_node(n.node) and isinstance(n.arg, nodes.Const) and isinstance(n.arg.value, str)
    }
    for item in ast.find_all(nodes.Getitem):
        if id(item.node) in reads_one and is_wp_credential(str(item.arg.value)):  # type: ignore[attr-defined]
            raise _Refused(
                f"{{{{ ${item.arg.value} }}}} would hand wp's own credential to the job (its API key, "  # type: ignore[attr-defined]
                "database URL or sync secrets); pass the job a credential of its own, e.g. a Kubernetes "
                "Secret or a variable of the job's environment that is not a WP_ setting"
            )
    for name in ast.find_all(nodes.Name):
        if name.name.startswith("__") and id(name) not in reads_one:
            raise _Refused(
                f"the name {name.name!r} is not allowed in a job template (names starting with __); "
                "read one environment variable with {{ $VAR }}"
            )
    for node in ast.find_all(nodes.Node):
        if not isinstance(node, _ALLOWED_NODES):
            what = "function calls" if isinstance(node, nodes.Call) else f"{type(node).__name__} expressions"
            raise _Refused(f"{what} are not allowed in a job template; use {{{{ variable }}}} placeholders")
        if isinstance(node, nodes.Getattr) and node.attr.startswith("_"):
            raise _Refused(
                f"attribute {node.attr!r} is not allowed in a job template (names starting with _)"
            )
        if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            key = node.arg.value
            if isinstance(key, str) and key.startswith("_") and not _is_env_node(node.node):
                raise _Refused(f"item {key!r} is not allowed in a job template (names starting with _)")


def is_wp_credential(name: str) -> bool:
    """Whether environment variable `name` is one of wp's own credentials (WP_CREDENTIALS, or any WP_ name
    that looks secret: *_KEY, *_TOKEN, *_SECRET, *PASSWORD*)."""
    upper = name.upper()
    return upper in WP_CREDENTIALS or (upper.startswith("WP_") and is_secret_key(upper))


def _is_env_node(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Name) and node.name == _ENV_NAME


@dataclass(frozen=True)
class _Compiled:
    names: frozenset[str]  # top-level names the text reads, `__env__` excluded
    template: Template
    expression: Callable[..., Any] | None  # set when the text is exactly one `{{ expression }}`


@functools.lru_cache(maxsize=4096)
def _compile(text: str) -> _Compiled:
    """Parse and vet one string of a job_configuration. Raises _Refused with a user-facing reason."""
    source = _rewrite_env_refs(text)
    try:
        ast = _ENV.parse(source)
        _refuse_unsafe(ast)
        names = frozenset(meta.find_undeclared_variables(ast)) - {_ENV_NAME}
        template = _ENV.from_string(ast)
        expression = None
        outputs = [n for n in ast.body if isinstance(n, nodes.Output)]
        single = len(ast.body) == 1 and len(outputs) == 1 and len(outputs[0].nodes) == 1
        if single and not isinstance(outputs[0].nodes[0], nodes.TemplateData):
            inner = source.strip()[2:-2].strip("-+")
            expression = _ENV.compile_expression(inner, undefined_to_none=False)
    except TemplateError as exc:
        raise _Refused(f"invalid placeholder syntax in {text!r}: {exc.message}") from None
    except (RecursionError, SyntaxError, MemoryError):
        # jinja2 parses and compiles recursively, and Python refuses deeply nested generated code
        raise _Refused(f"a placeholder nests too deeply in {_excerpt(text)}: write it flatter") from None
    return _Compiled(names, template, expression)


def _excerpt(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:77] + "...")


def _has_placeholder(value: str) -> bool:
    return "{{" in value


def _strings(value: Any, path: Path = ()) -> Iterator[tuple[Path, str]]:
    """Every string holding a placeholder in a JSON value, with its path."""
    if isinstance(value, str):
        if _has_placeholder(value):
            yield path, value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from _strings(v, (*path, str(k)))
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield from _strings(v, (*path, i))


def placeholders(job_configuration: Any) -> set[str]:
    """The top-level variable names `job_configuration` reads (`{{ env.FOO }}` reads `env`).

    `{{ $VAR }}` environment references and the worker's context names (CONTEXT_NAMES) are not variables
    and are left out; strings that do not parse are skipped (check_template reports them).
    """
    found: set[str] = set()
    for _path, text in _strings(job_configuration):
        try:
            found |= _compile(text).names
        except _Refused:
            continue
    return found - CONTEXT_NAMES


# ---------------------------------------------------------------------------------------------- schemas


def _properties(t: BaseJobTemplate) -> dict[str, Any]:
    props = t.variables.get("properties", {}) if isinstance(t.variables, Mapping) else {}
    return dict(props) if isinstance(props, Mapping) else {}


def _allows_unknown_keys(schema: Mapping[str, Any]) -> bool:
    """Unknown keys are refused unless the schema explicitly accepts them (additionalProperties not false)."""
    extra = schema.get("additionalProperties")
    return extra is not None and extra is not False


_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"})


def _without_required(schema: Any) -> Any:
    """A copy of a schema with every `required` list removed (deployments need not set required variables)."""
    if isinstance(schema, list):
        return [_without_required(s) for s in schema]
    if not isinstance(schema, Mapping):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "required" and isinstance(value, list):
            continue
        if key in _SCHEMA_MAPS and isinstance(value, Mapping):
            out[key] = {name: _without_required(sub) for name, sub in value.items()}
        else:
            out[key] = _without_required(value)
    return out


@dataclass(frozen=True)
class _CachedValidator:
    schema: Any  # a private copy of the schema asked for: a schema changed since is a miss, never a stale hit
    validator: jsonschema.Draft202012Validator


# Every deployment of a pool is checked against the same schema (often the same object); rebuilding
# `_without_required` and a validator for each was most of a large config's validation time. Validators are
# found by the schema object's id (a hit is checked equal to a private copy, so a changed schema is a miss),
# else by its canonical JSON. Results never depend on these caches.
_BY_ID: dict[tuple[int, bool], _CachedValidator] = {}
_BY_TEXT: dict[tuple[str, bool], jsonschema.Draft202012Validator] = {}
_CACHE_MAX = 1024


def _variables_validator(schema: Mapping[str, Any], for_run: bool) -> jsonschema.Draft202012Validator:
    """The validator of job variables against `schema` (without its `required` lists unless `for_run`)."""
    from reconciler.engine.patterns import BoundedValidator

    slot = (id(schema), for_run)
    cached = _BY_ID.get(slot)
    if cached is not None and cached.schema == schema:
        return cached.validator
    try:
        text = json.dumps(schema, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):  # not JSON data: nothing to key it by
        return BoundedValidator(schema if for_run else _without_required(schema))
    validator = _BY_TEXT.get((text, for_run))
    if validator is None:
        validator = BoundedValidator(json.loads(text) if for_run else _without_required(json.loads(text)))
    if len(_BY_ID) >= _CACHE_MAX or len(_BY_TEXT) >= _CACHE_MAX:
        _BY_ID.clear()
        _BY_TEXT.clear()
    _BY_TEXT[(text, for_run)] = validator
    _BY_ID[slot] = _CachedValidator(json.loads(text), validator)
    return validator


def _schema_errors(
    schema: Mapping[str, Any],
    instance: Any,
    validator: jsonschema.Draft202012Validator | None = None,
) -> list[tuple[Path, str]]:
    """(path, message) of every way `instance` fails `schema`; a broken schema is one error at the root."""
    from referencing.exceptions import Unresolvable

    from reconciler.engine.patterns import BoundedValidator

    try:
        if validator is None:
            validator = BoundedValidator(schema)
        errors = sorted(validator.iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path])
        return [(tuple(e.absolute_path), _error_message(e)) for e in errors]
    except Unresolvable as exc:
        return [((), f"the pool's variables schema has a reference that cannot be resolved: {exc}")]


def _error_message(error: jsonschema.ValidationError) -> str:
    path = tuple(error.absolute_path)
    if any(is_secret_key(str(p)) for p in path):
        # The message would quote the value; a secret must not be printed.
        return f"is invalid ({error.validator} check failed)"
    return str(error.message)


def _schema_problem(schema: Mapping[str, Any]) -> TemplateProblem | None:
    import jsonschema

    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        return TemplateProblem(("variables", *exc.absolute_path), f"not a valid JSON Schema: {exc.message}")
    return None


# ---------------------------------------------------------------------------------------------- checks


def check_template(t: BaseJobTemplate) -> list[TemplateProblem]:
    """What is wrong with a pool's template: variables not an object schema, placeholders that do not parse or
    are not declared in `variables.properties`, defaults that do not validate. Paths start at the template."""
    variables = t.variables
    if (
        not isinstance(variables, Mapping)
        or variables.get("type", "object") != "object"
        or not isinstance(variables.get("properties", {}), Mapping)
    ):
        return [
            TemplateProblem(
                ("variables",),
                'variables must be a JSON Schema object: {"type": "object", "properties": {NAME: SCHEMA}}',
            )
        ]
    broken = _schema_problem(variables)
    if broken:
        return [broken]
    props = _properties(t)
    return _placeholder_problems(t.job_configuration, props) + _default_problems(variables, props)


def _placeholder_problems(job_configuration: Any, props: Mapping[str, Any]) -> list[TemplateProblem]:
    problems: list[TemplateProblem] = []
    declared = ", ".join(sorted(props)) or "none"
    for path, text in _strings(job_configuration, ("job_configuration",)):
        try:
            names = _compile(text).names
        except _Refused as exc:
            problems.append(TemplateProblem(path, str(exc)))
            continue
        for name in sorted(names - set(props) - CONTEXT_NAMES):
            problems.append(
                TemplateProblem(
                    path,
                    f"placeholder {{{{ {name} }}}} uses undeclared variable {name!r}; declare it under "
                    f"variables.properties (declared: {declared})",
                )
            )
    return problems


def _default_problems(variables: Mapping[str, Any], props: Mapping[str, Any]) -> list[TemplateProblem]:
    defaults = {
        k: p["default"] for k, p in props.items() if isinstance(p, Mapping) and p.get("default") is not None
    }
    problems = []
    for path, message in _schema_errors(_without_required(variables), defaults):
        if not path:
            problems.append(TemplateProblem(("variables",), message))
            continue
        where = ("variables", "properties", path[0], "default", *path[1:])
        problems.append(TemplateProblem(where, f"the default of {path[0]!r} is invalid: {message}"))
    return problems


def _set_dotted(target: dict[str, Any], key: str, value: Any) -> None:
    """`a.b.c = v` into nested dicts, copying what it changes."""
    head, *rest = key.split(".")
    node = copy.deepcopy(target[head]) if isinstance(target.get(head), dict) else {}
    target[head] = node
    for part in rest[:-1]:
        child = node.get(part)
        node[part] = child = child if isinstance(child, dict) else {}
        node = child
    node[rest[-1]] = copy.deepcopy(value)


def validate_job_variables(
    t: BaseJobTemplate, job_variables: Mapping[str, Any], *, for_run: bool = False
) -> list[TemplateProblem]:
    """Problems of a deployment's (or, `for_run`, a run's merged) job variables against the pool's schema.

    A key the schema does not declare is refused, naming the allowed ones; `env.FOO` sets one `env` entry;
    a null value means "not set" and is not validated; `required` is enforced only `for_run` (schema
    defaults count).
    Paths are the job variables' own (`("env", "FOO")`).
    """
    return JobVariablesChecker(t, for_run=for_run).problems(job_variables)


class JobVariablesChecker:
    """`validate_job_variables` against one template, prepared once: a config checks every deployment of a
    pool against the same template, and finding its validator again for each was a third of the check.
    The template must not change while the checker is in use."""

    def __init__(self, t: BaseJobTemplate, *, for_run: bool = False) -> None:
        self.schema = t.variables if isinstance(t.variables, Mapping) else {}
        self.props = _properties(t)
        self.open = _allows_unknown_keys(self.schema)
        self.defaults = _defaults(t) if for_run else None
        self.validator = _variables_validator(self.schema, for_run)

    def problems(self, job_variables: Mapping[str, Any]) -> list[TemplateProblem]:
        problems: list[TemplateProblem] = []
        instance: dict[str, Any] = {}
        for key in sorted(job_variables, key=lambda k: ("." in k, k)):
            value = job_variables[key]
            head = key.split(".", 1)[0]
            if head not in self.props and not self.open:
                allowed = ", ".join(sorted(self.props)) or "none"
                problems.append(
                    TemplateProblem(
                        (key,), f"unknown job variable {head!r}; the pool's template allows: {allowed}"
                    )
                )
            elif value is not None and "." in key:
                _set_dotted(instance, key, value)
            elif value is not None:
                instance[key] = value  # only read; `_set_dotted` copies what it changes
        if self.defaults is not None:
            instance = {**copy.deepcopy(self.defaults), **instance}
        schema = self.validator.schema
        if _surely_valid(schema, instance):
            return problems
        problems += [
            TemplateProblem(path, f"job variable {format_path(path)!r} {message}" if path else message)
            for path, message in _schema_errors(schema, instance, self.validator)
        ]
        return problems


# JSON types as jsonschema's Draft 2020-12 checker sees them; bool is not a number, and a float that is a whole
# number (which jsonschema counts as an integer) is left to jsonschema.
_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
}
_ANNOTATIONS = frozenset({"title", "description", "default", "format", "examples", "$comment", "readOnly"})


def _surely_valid(schema: Any, instance: Any) -> bool:
    """True only when `instance` certainly passes `schema`, judged on a small subset of keywords (type,
    anyOf, properties, additionalProperties, required, annotations); anything else answers False and
    jsonschema decides. Most deployments' job variables pass; jsonschema took most of validating them."""
    if schema is True:
        return True
    if not isinstance(schema, dict):
        return False
    for keyword, value in schema.items():
        if keyword in _ANNOTATIONS:
            continue
        if keyword == "type":
            kinds = value if isinstance(value, list) else [value]
            if not any(k in _TYPES and _TYPES[k](instance) for k in kinds if isinstance(k, str)):
                return False
        elif keyword == "anyOf":
            if not isinstance(value, list) or not any(_surely_valid(s, instance) for s in value):
                return False
        elif keyword == "required":
            if isinstance(instance, dict) and not (
                isinstance(value, list) and all(isinstance(k, str) and k in instance for k in value)
            ):
                return False
        elif keyword in ("properties", "additionalProperties"):
            if isinstance(instance, dict) and not _object_surely_valid(schema, instance):
                return False
        else:
            return False
    return True


def _object_surely_valid(schema: Mapping[str, Any], instance: Mapping[str, Any]) -> bool:
    props = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    if not isinstance(props, dict):
        return False
    for key, value in instance.items():
        sub = props.get(key, extra)
        if not _surely_valid(sub, value):
            return False
    return True


# ---------------------------------------------------------------------------------------------- layering


def _defaults(t: BaseJobTemplate) -> dict[str, Any]:
    """Schema defaults; a null default counts as no default."""
    return {
        name: copy.deepcopy(p["default"])
        for name, p in _properties(t).items()
        if isinstance(p, Mapping) and p.get("default") is not None
    }


def _literal_env(t: BaseJobTemplate) -> dict[str, Any]:
    """`env` entries written literally (no placeholders) in the job_configuration: the pool's own layer."""
    env = t.job_configuration.get("env")
    if not isinstance(env, Mapping):
        return {}
    return {k: v for k, v in env.items() if not (isinstance(v, str) and _has_placeholder(v))}


def _apply_layer(acc: dict[str, Any], sources: dict[str, str], layer: Mapping[str, Any], source: str) -> None:
    """Lay one layer over `acc`: `env` merges key by key, other keys replace whole, `a.b` sets one entry."""
    for key in sorted(layer, key=lambda k: ("." in k, k)):
        value = layer[key]
        head = key.split(".", 1)[0]
        if "." in key:
            _set_dotted(acc, key, value)
            sources[key] = source
        elif key == "env" and isinstance(value, Mapping) and isinstance(acc.get("env"), Mapping):
            acc["env"] = {**acc["env"], **copy.deepcopy(dict(value))}
        else:
            acc[key] = copy.deepcopy(value)
        if key == "env" and isinstance(value, Mapping):
            sources.update({f"env.{k}": source for k in value})
        sources[head] = source


def _layers(
    t: BaseJobTemplate, deployment_vars: Mapping[str, Any], run_vars: Mapping[str, Any] | None
) -> tuple[dict[str, Any], dict[str, str]]:
    acc: dict[str, Any] = {}
    sources: dict[str, str] = {}
    literal = _literal_env(t)
    if literal:
        _apply_layer(acc, sources, {"env": literal}, "pool")
    _apply_layer(acc, sources, _defaults(t), "default")
    _apply_layer(acc, sources, deployment_vars, "deployment")
    _apply_layer(acc, sources, run_vars or {}, "run")
    return acc, sources


def effective_variables(
    t: BaseJobTemplate, deployment_vars: Mapping[str, Any], run_vars: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Schema defaults < deployment job_variables < run job_variables. `env` merges key by key across every
    layer (literal `env` entries of the job_configuration lowest); every other key is replaced whole."""
    return _layers(t, deployment_vars, run_vars)[0]


def explain_job_configuration(
    t: BaseJobTemplate, deployment_vars: Mapping[str, Any], run_vars: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """Where each value comes from: "default", "pool" (literal in the template), "deployment" or "run".

    Keys are variable names, `env.NAME` for single env entries, and literal top-level job_configuration keys.
    """
    _acc, sources = _layers(t, deployment_vars, run_vars)
    for key, value in t.job_configuration.items():
        if key not in sources and not any(True for _ in _strings(value)):
            sources[key] = "pool"
    return dict(sorted(sources.items()))


# ---------------------------------------------------------------------------------------------- rendering


def _is_json(value: Any) -> bool:
    if value is None or isinstance(value, str | int | float | bool):
        return True
    if isinstance(value, Mapping):
        return all(isinstance(k, str) and _is_json(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return all(_is_json(v) for v in value)
    return False


def _render_string(text: str, namespace: Mapping[str, Any]) -> Any:
    compiled = _compile(text)
    try:
        if compiled.expression is not None:
            value = compiled.expression(**namespace)
            if value is None or isinstance(value, Undefined):
                return _UNSET
            if not _is_json(value):
                raise _Refused(f"{text!r} does not evaluate to a JSON value")
            return copy.deepcopy(list(value) if isinstance(value, tuple) else value)
        rendered = compiled.template.render(namespace)
    except (TemplateError, SecurityError, TypeError, ValueError, ArithmeticError) as exc:
        raise _Refused(f"cannot render {_excerpt(text)}: {exc}") from None
    except (RecursionError, MemoryError):
        raise _Refused(f"cannot render {_excerpt(text)}: it nests or grows too much") from None
    if len(rendered) > MAX_TEXT:
        raise _Refused(f"rendering {text[:40]!r} gives more than {MAX_TEXT} characters")
    return rendered


def _render_value(value: Any, namespace: Mapping[str, Any], path: Path) -> Any:
    try:
        if isinstance(value, str):
            return _render_string(value, namespace) if _has_placeholder(value) else value
    except _Refused as exc:
        raise ValidationError(f"{format_path(path)}: {exc}", path=path) from None
    if isinstance(value, Mapping):
        rendered = ((k, _render_value(v, namespace, (*path, str(k)))) for k, v in value.items())
        return {k: v for k, v in rendered if v is not _UNSET}
    if isinstance(value, list | tuple):
        items = (_render_value(v, namespace, (*path, i)) for i, v in enumerate(value))
        return [v for v in items if v is not _UNSET]
    return copy.deepcopy(value)


def _namespace(
    variables: Mapping[str, Any], env: Mapping[str, str], context: Mapping[str, Any]
) -> dict[str, Any]:
    """What placeholders see: the context, then the variables that have a value, then `$VAR`."""
    ns: dict[str, Any] = dict(context)
    ns.update({k: v for k, v in variables.items() if v is not None})
    if isinstance(ns.get("env"), Mapping):
        ns["env"] = {k: v for k, v in ns["env"].items() if v is not None}
    # never rendered, even by a template that got past check_template: wp's own credentials are left out
    ns[_ENV_NAME] = _EnvView({k: v for k, v in env.items() if not is_wp_credential(k)})
    return ns


def render_job_configuration(
    t: BaseJobTemplate,
    deployment_vars: Mapping[str, Any],
    run_vars: Mapping[str, Any] | None = None,
    *,
    env: Mapping[str, str] = {},
    context: Mapping[str, Any] = {},
) -> dict[str, Any]:
    """The job configuration a worker starts: placeholders filled from the effective variables.

    `env` is the environment `{{ $VAR }}` reads; `context` adds names such as `flow_run`. A null variable
    counts as unset. When the template writes `env` as a mapping, the rendered `env` is its entries overlaid
    by the effective `env` (entries set to null are removed). Raises ValidationError (with the path) when a
    placeholder cannot be rendered or uses something the sandbox refuses.
    """
    variables = effective_variables(t, deployment_vars, run_vars)
    namespace = _namespace(variables, env, context)
    rendered = _render_value(t.job_configuration, namespace, ("job_configuration",))
    if not isinstance(rendered, dict):
        raise ValidationError("job_configuration must be a mapping", path=("job_configuration",))
    literal_env = rendered.get("env")
    if isinstance(t.job_configuration.get("env"), Mapping) and isinstance(literal_env, dict):
        layered = variables.get("env")
        merged = {**literal_env, **(layered if isinstance(layered, Mapping) else {})}
        rendered["env"] = {k: v for k, v in merged.items() if v is not None}
    return rendered
