"""A base job template's `variables` schema, and job variables validated against it (SPEC §1).

Owns what the pool's JSON Schema (draft 2020-12) means for job variables: the declared properties and their
defaults, a key the schema does not declare refused naming the allowed ones, `env.FOO` setting one `env`
entry, `required` enforced only for a run (deployments need not set required variables), and the schema
errors reported with their paths (never quoting a secret value). Validators are built once per schema and
most job variables are judged valid without jsonschema (`_surely_valid`). Placeholders, layering and
rendering are `reconciler.engine.template`.

Must never do I/O, read the clock or `os.environ`. jsonschema (with referencing, rpds and the `regex` of
patterns.py) is imported only where variables are validated: a worker only renders, and those libraries were
5 MB of its memory.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reconciler.diagnostics import format_path
from reconciler.engine.template_sandbox import Path
from reconciler.model import BaseJobTemplate, is_secret_key

if TYPE_CHECKING:
    import jsonschema


@dataclass(frozen=True)
class TemplateProblem:
    """One thing wrong with a template or with job variables; `path` is relative to the checked value."""

    path: Path
    message: str

    def __str__(self) -> str:
        return f"{format_path(self.path)}: {self.message}" if self.path else self.message


def declared_properties(t: BaseJobTemplate) -> dict[str, Any]:
    """The variables the template declares (`variables.properties`), by name."""
    props = t.variables.get("properties", {}) if isinstance(t.variables, Mapping) else {}
    return dict(props) if isinstance(props, Mapping) else {}


def schema_defaults(t: BaseJobTemplate) -> dict[str, Any]:
    """Schema defaults; a null default counts as no default."""
    return {
        name: copy.deepcopy(p["default"])
        for name, p in declared_properties(t).items()
        if isinstance(p, Mapping) and p.get("default") is not None
    }


def _allows_unknown_keys(schema: Mapping[str, Any]) -> bool:
    """Unknown keys are refused unless the schema explicitly accepts them (additionalProperties not false)."""
    extra = schema.get("additionalProperties")
    return extra is not None and extra is not False


_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"})


def without_required(schema: Any) -> Any:
    """A copy of a schema with every `required` list removed (deployments need not set required variables)."""
    if isinstance(schema, list):
        return [without_required(s) for s in schema]
    if not isinstance(schema, Mapping):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "required" and isinstance(value, list):
            continue
        if key in _SCHEMA_MAPS and isinstance(value, Mapping):
            out[key] = {name: without_required(sub) for name, sub in value.items()}
        else:
            out[key] = without_required(value)
    return out


@dataclass(frozen=True)
class _CachedValidator:
    schema: Any  # a private copy of the schema asked for: a schema changed since is a miss, never a stale hit
    validator: jsonschema.Draft202012Validator


# Every deployment of a pool is checked against the same schema (often the same object); rebuilding
# `without_required` and a validator for each was most of a large config's validation time. Validators are
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
        return BoundedValidator(schema if for_run else without_required(schema))
    validator = _BY_TEXT.get((text, for_run))
    if validator is None:
        validator = BoundedValidator(json.loads(text) if for_run else without_required(json.loads(text)))
    if len(_BY_ID) >= _CACHE_MAX or len(_BY_TEXT) >= _CACHE_MAX:
        _BY_ID.clear()
        _BY_TEXT.clear()
    _BY_TEXT[(text, for_run)] = validator
    _BY_ID[slot] = _CachedValidator(json.loads(text), validator)
    return validator


def schema_errors(
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


def schema_problem(schema: Mapping[str, Any]) -> TemplateProblem | None:
    import jsonschema

    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        return TemplateProblem(("variables", *exc.absolute_path), f"not a valid JSON Schema: {exc.message}")
    return None


def set_dotted(target: dict[str, Any], key: str, value: Any) -> None:
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
        self.props = declared_properties(t)
        self.open = _allows_unknown_keys(self.schema)
        self.defaults = schema_defaults(t) if for_run else None
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
                set_dotted(instance, key, value)
            elif value is not None:
                instance[key] = value  # only read; `set_dotted` copies what it changes
        if self.defaults is not None:
            instance = {**copy.deepcopy(self.defaults), **instance}
        schema = self.validator.schema
        if _surely_valid(schema, instance):
            return problems
        problems += [
            TemplateProblem(path, f"job variable {format_path(path)!r} {message}" if path else message)
            for path, message in schema_errors(schema, instance, self.validator)
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
