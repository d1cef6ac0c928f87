"""Is the configuration right? Structure (the generated schema), uniqueness, references, templates.

Owns every rule a config must satisfy (a schedule's own rule is in `config.schedule_rules`) and the wording of
its diagnostics: one Diagnostic per problem, with the file, line, column and field path, what is wrong (summary)
and how to fix it (detail). It collects all problems instead of stopping at the first.

Must never do I/O, read the environment or the clock, or change a value (normalize does).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from reconciler.config.normalize import masked, resolve_flow, schedule_slug
from reconciler.config.schedule_rules import schedule_rule_problems
from reconciler.config.schema import (
    ConfigDocument,
    DeploymentDoc,
    ParsedConfig,
    WorkPoolDoc,
    json_schema,
)
from reconciler.config.sources import Path, Positions, SourceMap
from reconciler.diagnostics import Diagnostic, Severity
from reconciler.errors import WpError
from reconciler.model import DEFAULT_QUEUE, KINDS, BaseJobTemplate, DesiredState, Kind, WorkPool


class _Problem(Protocol):
    @property
    def path(self) -> tuple[str | int, ...]: ...
    @property
    def message(self) -> str: ...


# --- structure ---------------------------------------------------------------------------------------------


def _schema_at(schema: Mapping[str, Any], loc: Path) -> Mapping[str, Any]:
    """The sub-schema describing the value at `loc` ({} when unknown)."""

    def resolve(node: Mapping[str, Any]) -> Mapping[str, Any]:
        while "$ref" in node or "anyOf" in node:
            if "$ref" in node:
                node = schema["$defs"][str(node["$ref"]).rsplit("/", 1)[-1]]
            else:
                node = next((s for s in node["anyOf"] if s.get("type") != "null"), {})
        return node

    node = resolve(schema)
    for part in loc:
        child = node.get("items", {}) if isinstance(part, int) else node.get("properties", {}).get(part, {})
        node = resolve(child)
    return node


def _describe(schema: Mapping[str, Any]) -> str:
    kind = schema.get("type")
    words = {
        "integer": "an integer",
        "number": "a number",
        "boolean": "true or false",
        "string": "a string",
        "array": "a list",
        "object": "a mapping",
    }
    text = words.get(str(kind), "a valid value")
    if "exclusiveMinimum" in schema:
        text += f" > {schema['exclusiveMinimum']}"
    elif "minimum" in schema:
        text += f" >= {schema['minimum']}"
    return text


def _field_name(loc: Path) -> str:
    names = [p for p in loc if isinstance(p, str)]
    return names[-1] if names else "document"


def _shown(loc: Path, value: Any) -> str:
    for part in reversed(loc):
        value = masked(part, value)
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _structure_diagnostic(
    err: Mapping[str, Any], positions: Positions, schema: Mapping[str, Any]
) -> Diagnostic:
    loc: Path = tuple(err["loc"])
    kind = str(err["type"])
    if kind == "extra_forbidden":
        allowed = sorted(_schema_at(schema, loc[:-1]).get("properties", {}))
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'? " if close else "remove it. "
        return positions.error(
            f"unknown field '{loc[-1]}'", f"{hint}Allowed fields: {', '.join(allowed)}", loc, key=True
        )
    if kind == "missing":
        expected = _describe(_schema_at(schema, loc))
        return positions.error(
            f"missing required field '{loc[-1]}'", f"add '{loc[-1]}:' here, with {expected}", loc
        )
    if kind == "value_error":  # a field's own check, worded "what is wrong; how to fix it"
        problem, _, fix = str(err["msg"]).removeprefix("Value error, ").partition("; ")
        return positions.error(
            f"wrong value for '{_field_name(loc)}': {problem}",
            fix or f"got {_shown(loc, err.get('input'))}",
            loc,
        )
    expected = _describe(_schema_at(schema, loc))
    message = str(err["msg"])
    # type errors name pydantic's classes ("instance of DeploymentDoc"); say what the format expects instead
    message = (
        f"expected {expected}" if kind.endswith(("_type", "_parsing")) else message[0].lower() + message[1:]
    )
    return positions.error(
        f"wrong value for '{_field_name(loc)}': {message}",
        f"got {_shown(loc, err.get('input'))}; write {expected} here",
        loc,
    )


_DEFINING = frozenset({"cron", "interval", "rrule"})  # fields without which their object means nothing


def _salvage(raw: Mapping[str, Any], key: str, model: type[BaseModel]) -> list[tuple[int, Any]]:
    """The items of a list, without their faulty values, so later checks still run on the rest (a queue with a
    wrong priority is still declared; only its priority is left out)."""
    items = raw.get(key)
    if not isinstance(items, list):
        return []
    good: list[tuple[int, Any]] = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            continue
        value: Any = item
        for _ in range(64):  # each round removes one faulty value; errors are few
            try:
                good.append((i, model.model_validate(value)))
                break
            except ValidationError as exc:  # already reported
                loc = next((tuple(e["loc"]) for e in exc.errors() if e["loc"]), ())
                if loc and loc[-1] in _DEFINING:  # a schedule without its rule is no schedule: drop it
                    loc = loc[:-1]
                value = _without(value, loc)
                if value is None:
                    break
    return good


def _without(value: Any, loc: Path) -> Any:
    """`value` (plain YAML data) without the part at `loc`; a missing required part takes its parent with it.
    None when nothing is left of it."""
    if not loc:
        return None
    head, rest = loc[0], loc[1:]
    if isinstance(value, Mapping) and head in value:
        if not rest:
            return {k: v for k, v in value.items() if k != head}
        inner = _without(value[head], rest)
        return {k: v for k, v in value.items() if k != head} | ({} if inner is None else {head: inner})
    if isinstance(value, list) and isinstance(head, int) and 0 <= head < len(value):
        if not rest:
            return value[:head] + value[head + 1 :]
        inner = _without(value[head], rest)
        return value[:head] + ([] if inner is None else [inner]) + value[head + 1 :]
    return None  # the faulty part is missing or of the wrong shape here: drop what holds it


def validate_document(raw: Any, positions: Positions) -> tuple[ParsedConfig, list[Diagnostic]]:
    """Check the merged document against the config schema; every structural problem is one Diagnostic."""
    if not isinstance(raw, Mapping):
        return ParsedConfig(), [
            positions.error("the configuration must be a mapping", "start with `project: NAME`", ())
        ]
    try:
        doc = ConfigDocument.model_validate(raw)
    except ValidationError as exc:
        schema = json_schema()
        diagnostics = [_structure_diagnostic(e, positions, schema) for e in exc.errors()]
        project = raw.get("project")
        parsed = ParsedConfig(
            project=project if isinstance(project, str) else "",
            prune=raw.get("prune") is True,
            secret_patterns=[p for p in raw.get("secret_patterns") or [] if isinstance(p, str)]
            if isinstance(raw.get("secret_patterns"), list)
            else [],
            pools=_salvage(raw, "work_pools", WorkPoolDoc),
            deployments=_salvage(raw, "deployments", DeploymentDoc),
        )
        return parsed, diagnostics
    parsed = ParsedConfig(
        doc.project,
        doc.prune,
        doc.secret_patterns,
        list(enumerate(doc.work_pools)),
        list(enumerate(doc.deployments)),
    )
    return parsed, []


# --- meaning -----------------------------------------------------------------------------------------------


def _first_at(positions: Positions, path: Path) -> str:
    location, _ = positions.where(path)
    return f"{location.file}:{location.line}" if location else "elsewhere"


def _duplicates(
    positions: Positions, entries: Iterable[tuple[Any, Path]], what: str, rule: str
) -> list[Diagnostic]:
    """One diagnostic for every entry whose value was seen before, pointing back at the first one."""
    first: dict[Any, Path] = {}
    out: list[Diagnostic] = []
    for value, path in entries:
        if value is None:
            continue
        if value in first:
            out.append(
                positions.error(
                    f"duplicate {what} {value!r}",
                    f"first declared at {_first_at(positions, first[value])}; {rule}",
                    path,
                )
            )
        else:
            first[value] = path
    return out


def _ignore_changes(positions: Positions, kind: Kind, fields: list[str], at: Path) -> list[Diagnostic]:
    if not fields:  # the usual case, checked for every object of a large project
        return []
    info = KINDS[kind]
    allowed = sorted(set(info.model.model_fields) - set(info.identity) - {"schedules"})
    out: list[Diagnostic] = []
    for k, name in enumerate(fields):
        if name not in allowed:
            close = difflib.get_close_matches(name, allowed, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            out.append(
                positions.error(
                    f"ignore_changes names unknown field '{name}'",
                    f"{hint}Fields of a {kind.value}: {', '.join(allowed)}",
                    (*at, "ignore_changes", k),
                )
            )
    return out


def _template_problems(template: BaseJobTemplate) -> list[_Problem]:
    try:
        from reconciler.engine.template import check_template
    except ImportError:  # written by another part of wp; absent in partial checkouts
        return []
    return list(check_template(template))


_Checker = Callable[[Mapping[str, Any]], list[_Problem]]


def _job_variables_checker(template: BaseJobTemplate) -> _Checker:
    try:
        from reconciler.engine.template import JobVariablesChecker
    except ImportError:
        return lambda _: []
    checker = JobVariablesChecker(template)
    return lambda job_variables: list(checker.problems(job_variables))


def _unknown_type(pool_type: str) -> str | None:
    """Why a pool type has no default template, or None when it has one (or defaults are not available)."""
    try:
        from reconciler.engine.job_templates import default_base_job_template
    except ImportError:
        return None
    try:
        default_base_job_template(pool_type)
    except (KeyError, ValueError, LookupError, WpError) as exc:
        return str(exc) or f"unknown type {pool_type!r}"
    return None


def _pool_checks(positions: Positions, i: int, doc: WorkPoolDoc, pool: WorkPool | None) -> list[Diagnostic]:
    at: Path = ("work_pools", i)
    out = _duplicates(
        positions,
        ((q.name, (*at, "queues", j, "name")) for j, q in enumerate(doc.queues)),
        "queue name",
        f"queue names are unique within work pool '{doc.name}'",
    )
    out += _duplicates(
        positions,
        ((q.priority, (*at, "queues", j, "priority")) for j, q in enumerate(doc.queues)),
        "queue priority",
        f"priorities are unique within work pool '{doc.name}' (1 = highest); pick a free one",
    )
    out += _ignore_changes(positions, Kind.WORK_POOL, doc.ignore_changes, at)
    for j, q in enumerate(doc.queues):
        out += _ignore_changes(positions, Kind.WORK_QUEUE, q.ignore_changes, (*at, "queues", j))
    if doc.base_job_template is None and (why := _unknown_type(doc.type)) is not None:
        out.append(
            positions.error(
                f"work pool type '{doc.type}' has no default base job template",
                f"{why}; use a known type or give base_job_template",
                (*at, "type"),
            )
        )
    if doc.base_job_template is not None and pool is not None and pool.base_job_template is not None:
        for p in _template_problems(pool.base_job_template):
            out.append(
                positions.error(
                    p.message,
                    "declare every placeholder in variables.properties with a valid default",
                    (*at, "base_job_template", *p.path),
                )
            )
    return out


def _schedule_checks(positions: Positions, doc: DeploymentDoc, at: Path) -> list[Diagnostic]:
    out = _duplicates(
        positions,
        ((schedule_slug(s), (*at, "schedules", k, "slug")) for k, s in enumerate(doc.schedules)),
        "schedule slug",
        "slugs are unique within a deployment",
    )
    out += schedule_rule_problems(positions, doc, at)
    return out


def _deployment_checks(
    positions: Positions,
    i: int,
    doc: DeploymentDoc,
    pools: Mapping[str, tuple[WorkPoolDoc, WorkPool | None]],
    checkers: dict[str | tuple[str, str], _Checker],
) -> list[Diagnostic]:
    """A deployment's schedules, lifecycle fields, queue and job variables; `checkers` holds each pool's
    job-variables checker once made (by pool name, or by type for pools with their type's default template)."""
    at: Path = ("deployments", i)
    out = _schedule_checks(positions, doc, at) + _ignore_changes(
        positions, Kind.DEPLOYMENT, doc.ignore_changes, at
    )
    ref = doc.work_pool
    if ref is None or ref.name is None or ref.name not in pools:
        return out  # pools the config does not declare are checked against the store (validate_references)
    pool_doc, pool = pools[ref.name]
    queues = [q.name for q in pool_doc.queues]
    if ref.work_queue_name and ref.work_queue_name != DEFAULT_QUEUE and ref.work_queue_name not in queues:
        out.append(
            positions.error(
                f"work pool '{ref.name}' declares no queue '{ref.work_queue_name}'",
                f"declare it under the pool's queues, or use one of: {', '.join([DEFAULT_QUEUE, *queues])}",
                (*at, "work_pool", "work_queue_name"),
            )
        )
    if pool is not None and pool.base_job_template is not None:
        # Pools that give no template get their type's default, equal for every pool of that type: one checker
        # serves them all (preparing one per pool was a quarter of checking a 1,000-pool config).
        shared = ("default template", pool_doc.type) if pool_doc.base_job_template is None else None
        key = shared or ref.name
        check = checkers.get(key)
        if check is None:
            check = checkers[key] = _job_variables_checker(pool.base_job_template)
        for p in check(ref.job_variables):
            out.append(
                positions.error(
                    p.message,
                    f"job_variables must match the variables of work pool '{ref.name}'",
                    (*at, "work_pool", "job_variables", *p.path),
                )
            )
    return out


def validate_config(
    parsed: ParsedConfig, desired: DesiredState, positions: Positions, flow_names: Mapping[str, str]
) -> list[Diagnostic]:
    """Uniqueness, lifecycle fields, schedules, templates and in-config references of the parsed documents."""
    out = _duplicates(
        positions,
        ((p.name, ("work_pools", i, "name")) for i, p in parsed.pools),
        "work pool name",
        "pool names are unique; rename or remove one",
    )
    built = {p.name: p for p in desired.pools}
    pools: dict[str, tuple[WorkPoolDoc, WorkPool | None]] = {}
    for i, doc in parsed.pools:
        pools.setdefault(doc.name, (doc, built.get(doc.name)))
        out += _pool_checks(positions, i, doc, built.get(doc.name))
    out += _duplicates(
        positions,
        (
            (f"{resolve_flow(d, flow_names)}/{d.name}", ("deployments", i, "name"))
            for i, d in parsed.deployments
        ),
        "deployment",
        "deployment names are unique within their flow",
    )
    checkers: dict[str | tuple[str, str], _Checker] = {}
    for i, ddoc in parsed.deployments:
        out += _deployment_checks(positions, i, ddoc, pools, checkers)
    return out


def validate_references(
    desired: DesiredState,
    sources: SourceMap,
    existing_pools: Mapping[str, WorkPool],
    default_pool: str | None = None,
) -> list[Diagnostic]:
    """Deployments whose pool the config does not declare: the pool must exist in the store, and their
    job_variables must match its template; a deployment naming no pool needs the store's default pool. The
    engine calls this with the snapshot's pools and default pool."""
    declared = {p.name for p in desired.pools}
    out: list[Diagnostic] = []
    checkers: dict[str, _Checker] = {}
    for dep in desired.deployments:
        pool_name = dep.work_pool
        address = dep.key.address
        if pool_name is None and default_pool is None:
            known = sorted(declared | set(existing_pools))
            example = known[0] if known else "NAME"
            out.append(
                sources.diagnostic(
                    Severity.ERROR,
                    f"deployment '{dep.flow}/{dep.name}' names no work pool, and no pool is marked default",
                    f"set `work_pool: {{name: {example}}}` on it"
                    + (f" (pools: {', '.join(known)})" if known else "")
                    + ", or mark a pool as default: wp work-pool create NAME --set-as-default",
                    address,
                    (),
                )
            )
            continue
        if pool_name is None or pool_name in declared:
            continue
        pool = existing_pools.get(pool_name)
        if pool is None:
            known = sorted(declared | set(existing_pools))
            close = difflib.get_close_matches(pool_name, known, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            out.append(
                sources.diagnostic(
                    Severity.ERROR,
                    f"deployment '{dep.flow}/{dep.name}' uses work pool '{pool_name}', which is neither "
                    "declared nor exists in the store",
                    f"{hint}declare it under work_pools, or create it: wp work-pool create {pool_name}",
                    address,
                    ("work_pool",),
                )
            )
            continue
        if pool.base_job_template is None:
            continue
        check = checkers.get(pool_name)
        if check is None:
            check = checkers[pool_name] = _job_variables_checker(pool.base_job_template)
        for p in check(dep.job_variables):
            out.append(
                sources.diagnostic(
                    Severity.ERROR,
                    p.message,
                    f"job_variables must match the variables of work pool '{pool_name}'",
                    address,
                    ("job_variables", *p.path),
                )
            )
    return out
