"""Base job templates: placeholder semantics, job-variable validation, layering and rendering (SPEC §1).

Owns what `{{ placeholders }}` mean in a `job_configuration`: a value that is exactly one placeholder
takes the variable's value with its type, and disappears (dict key removed, list item dropped) when the
variable has no value; a placeholder inside longer text renders as text ("" when unset); `{{ $VAR }}` reads
the `env` mapping passed in. Also owns how job variables layer (schema defaults < deployment < run, `env`
merged key by key) and how they are validated against the pool's JSON Schema (draft 2020-12).

Rendering runs in the bounded jinja2 sandbox of `reconciler.engine.template_sandbox`, so a template can
neither reach Python internals nor exhaust the machine.

Must never do I/O, read the clock or `os.environ`: the environment is a parameter.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from jinja2 import TemplateError, Undefined
from jinja2.exceptions import SecurityError

from reconciler.diagnostics import format_path
from reconciler.engine.template_sandbox import (
    ENV_NAME,
    Path,
    Refused,
    compile_text,
    excerpt,
    has_placeholder,
    is_wp_credential,
    placeholder_strings,
)
from reconciler.engine.template_sizes import MAX_TEXT
from reconciler.errors import ValidationError
from reconciler.model import BaseJobTemplate, is_secret_key

if TYPE_CHECKING:
    # jsonschema (with referencing, rpds and the `regex` of patterns.py) is imported where variables are
    # validated: a worker only renders, and those libraries were 5 MB of its memory.
    import jsonschema

# Names a worker passes in `context` (flow_run id/name, ...). They need no declaration in `variables`.
CONTEXT_NAMES: frozenset[str] = frozenset({"flow_run", "deployment", "work_pool", "work_queue", "worker"})


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


class _EnvView(dict[str, str]):
    """`{{ $VAR }}` lookups: an unset variable reads as "" (as in the system wp models)."""

    def __missing__(self, key: str) -> str:
        return ""


def placeholders(job_configuration: Any) -> set[str]:
    """The top-level variable names `job_configuration` reads (`{{ env.FOO }}` reads `env`).

    `{{ $VAR }}` environment references and the worker's context names (CONTEXT_NAMES) are not variables
    and are left out; strings that do not parse are skipped (check_template reports them).
    """
    found: set[str] = set()
    for _path, text in placeholder_strings(job_configuration):
        try:
            found |= compile_text(text).names
        except Refused:
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
    for path, text in placeholder_strings(job_configuration, ("job_configuration",)):
        try:
            names = compile_text(text).names
        except Refused as exc:
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
    return {k: v for k, v in env.items() if not (isinstance(v, str) and has_placeholder(v))}


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
        if key not in sources and not any(True for _ in placeholder_strings(value)):
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
    compiled = compile_text(text)
    try:
        if compiled.expression is not None:
            value = compiled.expression(**namespace)
            if value is None or isinstance(value, Undefined):
                return _UNSET
            if not _is_json(value):
                raise Refused(f"{text!r} does not evaluate to a JSON value")
            return copy.deepcopy(list(value) if isinstance(value, tuple) else value)
        rendered = compiled.template.render(namespace)
    except (TemplateError, SecurityError, TypeError, ValueError, ArithmeticError) as exc:
        raise Refused(f"cannot render {excerpt(text)}: {exc}") from None
    except (RecursionError, MemoryError):
        raise Refused(f"cannot render {excerpt(text)}: it nests or grows too much") from None
    if len(rendered) > MAX_TEXT:
        raise Refused(f"rendering {text[:40]!r} gives more than {MAX_TEXT} characters")
    return rendered


def _render_value(value: Any, namespace: Mapping[str, Any], path: Path) -> Any:
    try:
        if isinstance(value, str):
            return _render_string(value, namespace) if has_placeholder(value) else value
    except Refused as exc:
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
    ns[ENV_NAME] = _EnvView({k: v for k, v in env.items() if not is_wp_credential(k)})
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
