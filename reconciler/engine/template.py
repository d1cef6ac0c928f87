"""Base job templates: placeholder semantics, template checks, layering and rendering (SPEC §1).

Owns what `{{ placeholders }}` mean in a `job_configuration`: a value that is exactly one placeholder
takes the variable's value with its type, and disappears (dict key removed, list item dropped) when the
variable has no value; a placeholder inside longer text renders as text ("" when unset); `{{ $VAR }}` reads
the `env` mapping passed in. Also owns what is wrong with a pool's template (`check_template`) and how job
variables layer (schema defaults < deployment < run, `env` merged key by key). Validating job variables
against the pool's JSON Schema is `reconciler.engine.template_variables`.

Rendering runs in the bounded jinja2 sandbox of `reconciler.engine.template_sandbox`, so a template can
neither reach Python internals nor exhaust the machine.

Must never do I/O, read the clock or `os.environ`: the environment is a parameter.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from enum import Enum
from typing import Any

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
from reconciler.engine.template_variables import (
    JobVariablesChecker,
    TemplateProblem,
    declared_properties,
    schema_defaults,
    schema_errors,
    schema_problem,
    set_dotted,
    without_required,
)
from reconciler.errors import ValidationError
from reconciler.model import BaseJobTemplate

# reconciler.config.validate imports the checker from here, with check_template
__all__ = [
    "CONTEXT_NAMES",
    "JobVariablesChecker",
    "TemplateProblem",
    "check_template",
    "effective_variables",
    "explain_job_configuration",
    "placeholders",
    "render_job_configuration",
]

# Names a worker passes in `context` (flow_run id/name, ...). They need no declaration in `variables`.
CONTEXT_NAMES: frozenset[str] = frozenset({"flow_run", "deployment", "work_pool", "work_queue", "worker"})


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
    broken = schema_problem(variables)
    if broken:
        return [broken]
    props = declared_properties(t)
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
    for path, message in schema_errors(without_required(variables), defaults):
        if not path:
            problems.append(TemplateProblem(("variables",), message))
            continue
        where = ("variables", "properties", path[0], "default", *path[1:])
        problems.append(TemplateProblem(where, f"the default of {path[0]!r} is invalid: {message}"))
    return problems


# ---------------------------------------------------------------------------------------------- layering


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
            set_dotted(acc, key, value)
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
    _apply_layer(acc, sources, schema_defaults(t), "default")
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
