"""Raw config documents -> the model: env substitution, defaults, flow names, canonical order.

Owns `${VAR}`, `${VAR:-default}` and `{{ $VAR }}` substitution from a passed-in mapping (in a
`base_job_template` and in pull steps, `{{ $VAR }}` stays for the worker to render), the default flow name and schedule slug,
the type's default base job template, `DesiredState.lifecycle`, and the SourceMap of every object's address.

Must never do I/O, read os.environ or the clock.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Set
from functools import partial
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from reconciler.config.schema import DeploymentDoc, ParsedConfig, QueueDoc, ScheduleDoc, WorkPoolDoc
from reconciler.config.sources import DEPLOYMENT_FIELD_PATHS, Path, Positions, SourceMap
from reconciler.diagnostics import Diagnostic
from reconciler.errors import WpError
from reconciler.model import (
    DEFAULT_QUEUE,
    DEFAULT_SECRET_PATTERNS,
    BaseJobTemplate,
    Deployment,
    DesiredState,
    Lifecycle,
    Schedule,
    WorkPool,
    WorkQueue,
    default_flow_name,
    deployment_key,
    is_secret_key,
    pool_key,
    queue_key,
)

# `$${X}` is an escaped, literal `${X}`.
_DOLLAR = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_JINJA_ENV = re.compile(r"\{\{\s*\$([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def _for_the_worker(path: Path) -> bool:
    """Whether `{{ $VAR }}` at `path` is left for the worker: in a base job template it is rendered when a run
    is submitted, in a pull step when the step runs (as Prefect's `run_steps` does)."""
    return len(path) >= 3 and (
        (path[0] == "work_pools" and path[2] == "base_job_template")
        or (path[0] == "deployments" and path[2] == "pull")
    )


class _Substitution:
    def __init__(self, env: Mapping[str, str], positions: Positions) -> None:
        self.env = env
        self.positions = positions
        self.diagnostics: list[Diagnostic] = []

    def missing(self, name: str, path: Path) -> str:
        self.diagnostics.append(
            self.positions.error(
                f"environment variable '{name}' is not set",
                f"set {name} in the environment, or give a default: ${{{name}:-default}}",
                path,
            )
        )
        return ""

    def text(self, value: str, path: Path) -> str:
        def dollar(m: re.Match[str]) -> str:
            if m.group(0) == "$${":
                return "${"
            name, default = m.group(1), m.group(2)
            if name in self.env:
                return self.env[name]
            return default if default is not None else self.missing(name, path)

        def jinja(m: re.Match[str]) -> str:
            name = m.group(1)
            return self.env[name] if name in self.env else self.missing(name, path)

        value = _DOLLAR.sub(dollar, value)
        return value if _for_the_worker(path) else _JINJA_ENV.sub(jinja, value)

    def walk(self, value: Any, path: Path) -> Any:
        # A child's path is built only when it is a container or holds a `$`: most leaves need none, and a
        # large project has hundreds of thousands of them.
        if isinstance(value, dict):
            return {k: self.child(v, path, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self.child(v, path, i) for i, v in enumerate(value)]
        if isinstance(value, str) and ("$" in value):
            return self.text(value, path)
        return value

    def child(self, value: Any, parent: Path, key: str | int) -> Any:
        if isinstance(value, str):
            return self.text(value, (*parent, key)) if "$" in value else value
        if isinstance(value, dict | list):
            return self.walk(value, (*parent, key))
        return value


def substitute_env(
    document: Any, env: Mapping[str, str], positions: Positions
) -> tuple[Any, list[Diagnostic]]:
    """A copy of `document` with environment references replaced; a missing variable is a diagnostic."""
    sub = _Substitution(env, positions)
    return sub.walk(document, ()), sub.diagnostics


def resolve_flow(dep: DeploymentDoc, flow_names: Mapping[str, str]) -> str:
    """`flow:` if given, else the entrypoint's `@flow(name=...)`, else its function name with `_` as `-`."""
    if dep.flow:
        return dep.flow
    entrypoint = dep.entrypoint
    function = entrypoint.rpartition(":")[2] if ":" in entrypoint else entrypoint.rpartition(".")[2]
    return flow_names.get(entrypoint) or default_flow_name(function)


def schedule_slug(doc: ScheduleDoc) -> str:
    """The given slug, else one derived from the definition, so reordering schedules keeps their identity."""
    if doc.slug:
        return doc.slug
    kind = "cron" if doc.cron else "interval" if doc.interval is not None else "rrule"
    definition = doc.model_dump_json(include={"cron", "interval", "rrule", "timezone", "anchor_date"})
    return f"{kind}-{hashlib.sha256(definition.encode()).hexdigest()[:8]}"


def default_template(pool_type: str) -> BaseJobTemplate | None:
    """The type's default base job template, or None for a type that has none."""
    try:
        from reconciler.engine.job_templates import default_base_job_template
    except ImportError:  # written by another part of wp; absent in partial checkouts
        return None
    try:
        return default_base_job_template(pool_type)
    except (KeyError, ValueError, LookupError, WpError):
        return None


def pool_template(doc: WorkPoolDoc) -> BaseJobTemplate | None:
    if doc.base_job_template is not None:
        return BaseJobTemplate(**doc.base_job_template.model_dump())
    return default_template(doc.type)


M = TypeVar("M", bound=BaseModel)


class _Builder:
    def __init__(self, positions: Positions) -> None:
        self.positions = positions
        self.diagnostics: list[Diagnostic] = []

    def build(self, factory: Callable[[], M], at: Path, fields: Mapping[str, Path] | None = None) -> M | None:
        """Run a model constructor; its validation errors become diagnostics at the object's fields."""
        try:
            return factory()
        except ValidationError as exc:
            for err in exc.errors():
                loc = tuple(err["loc"])
                if loc and isinstance(loc[0], str) and fields and loc[0] in fields:
                    loc = fields[loc[0]] + loc[1:]
                message = str(err["msg"]).removeprefix("Value error, ")
                self.diagnostics.append(self.positions.error(message, _hint(loc, message), (*at, *loc)))
            return None


def _hint(loc: tuple[Any, ...], message: str) -> str:
    if "exactly one of" in message:
        return "keep exactly one of cron, interval (seconds) or rrule in this schedule"
    if "name" in loc or "flow" in loc:
        return "rename it: names are non-blank and contain none of / % & > <"
    return "fix this value"


def _lifecycle(doc: WorkPoolDoc | DeploymentDoc | Any) -> Lifecycle | None:
    if not doc.protect and not doc.ignore_changes:
        return None
    return Lifecycle(protect=doc.protect, ignore_changes=tuple(doc.ignore_changes))


def _pool(doc: WorkPoolDoc) -> WorkPool:
    return WorkPool(
        name=doc.name,
        type=doc.type,
        description=doc.description,
        paused=doc.paused,
        concurrency_limit=doc.concurrency_limit,
        base_job_template=pool_template(doc),
    )


def _queue(pool: str, doc: QueueDoc) -> WorkQueue:
    return WorkQueue(work_pool=pool, **doc.model_dump(exclude={"protect", "ignore_changes"}))


def _schedule(doc: ScheduleDoc) -> Schedule:
    data = doc.model_dump(exclude={"slug"})
    return Schedule(slug=schedule_slug(doc), **data)


def _deployment(
    doc: DeploymentDoc, flow: str, schedules: list[Schedule], schemas: Mapping[str, dict[str, Any]] | None
) -> Deployment:
    ref = doc.work_pool
    return Deployment(
        flow=flow,
        name=doc.name,
        entrypoint=doc.entrypoint,
        work_pool=ref.name if ref else None,
        work_queue=(ref.work_queue_name if ref else None) or DEFAULT_QUEUE,
        job_variables=ref.job_variables if ref else {},
        parameters=doc.parameters,
        schedules=tuple(sorted(schedules, key=lambda s: s.slug)),
        tags=tuple(doc.tags),
        description=doc.description,
        paused=doc.paused,
        concurrency_limit=doc.concurrency_limit,
        version=doc.version,
        pull_steps=tuple(doc.pull or ()),
        parameter_schema=schemas.get(doc.entrypoint) if schemas is not None else None,
    )


def to_desired(
    parsed: ParsedConfig,
    positions: Positions,
    flow_names: Mapping[str, str],
    source_dir: str | None = None,
    parameter_schemas: Mapping[str, dict[str, Any]] | None = None,
) -> tuple[DesiredState, SourceMap, list[Diagnostic]]:
    """Validated documents -> DesiredState in canonical order, the SourceMap of its addresses, diagnostics.
    `parameter_schemas` (by entrypoint): each deployment's flow parameters, recorded as `with_parameter_schemas`
    records them, while building it (copying 10,000 deployments afterwards cost more)."""
    builder = _Builder(positions)
    roots: dict[str, Path] = {}
    lifecycle: dict[str, Lifecycle] = {}
    pools: list[WorkPool] = []
    queues: list[WorkQueue] = []
    deployments: list[Deployment] = []
    for i, pdoc in parsed.pools:
        at: Path = ("work_pools", i)
        pool = builder.build(partial(_pool, pdoc), at)
        if pool is None:
            continue
        pools.append(pool)
        roots.setdefault(pool_key(pool.name).address, at)
        if (life := _lifecycle(pdoc)) is not None:
            lifecycle[pool_key(pool.name).address] = life
        for j, qdoc in enumerate(pdoc.queues):
            qat: Path = (*at, "queues", j)
            queue = builder.build(partial(_queue, pdoc.name, qdoc), qat)
            if queue is None:
                continue
            queues.append(queue)
            roots.setdefault(queue_key(pool.name, queue.name).address, qat)
            if (life := _lifecycle(qdoc)) is not None:
                lifecycle[queue.key.address] = life
    for i, ddoc in parsed.deployments:
        at = ("deployments", i)
        flow = resolve_flow(ddoc, flow_names)
        built = [
            builder.build(partial(_schedule, s), (*at, "schedules", k)) for k, s in enumerate(ddoc.schedules)
        ]
        # A faulty schedule is reported; the deployment is still built from the rest so that later checks (its
        # pool in the store) run on it too. The config then has errors, so this state is never planned.
        schedules = [s for s in built if s is not None]
        dep = builder.build(
            partial(_deployment, ddoc, flow, schedules, parameter_schemas), at, DEPLOYMENT_FIELD_PATHS
        )
        if dep is None:
            continue
        deployments.append(dep)
        roots.setdefault(deployment_key(dep.flow, dep.name).address, at)
        for k, sdoc in enumerate(ddoc.schedules):
            roots.setdefault(f"schedule.{dep.flow}/{dep.name}#{schedule_slug(sdoc)}", (*at, "schedules", k))
        if (life := _lifecycle(ddoc)) is not None:
            lifecycle[dep.key.address] = life
    patterns = tuple(dict.fromkeys((*DEFAULT_SECRET_PATTERNS, *parsed.secret_patterns)))
    desired = DesiredState(
        project=parsed.project or "unnamed",
        pools=tuple(sorted(pools, key=lambda p: p.name)),
        queues=tuple(sorted(queues, key=lambda q: (q.work_pool, q.name))),
        deployments=tuple(sorted(deployments, key=lambda d: (d.flow, d.name))),
        lifecycle=dict(sorted(lifecycle.items())),
        prune=parsed.prune,
        secret_patterns=patterns,
        source_dir=source_dir,
    )
    return desired, SourceMap(positions, roots), builder.diagnostics


def with_parameter_schemas(
    desired: DesiredState, schemas: Mapping[str, dict[str, Any]], skip: Set[str] = frozenset()
) -> DesiredState:
    """`desired` with each deployment's flow parameters (by entrypoint) recorded, as Prefect records a
    deployment's `parameter_openapi_schema`: runs are checked against them where the code cannot be read."""
    deployments = tuple(
        d if d.key.address in skip else d.model_copy(update={"parameter_schema": schemas.get(d.entrypoint)})
        for d in desired.deployments
    )
    return desired.model_copy(update={"deployments": deployments})


def masked(key: str | int, value: Any, patterns: tuple[str, ...] = DEFAULT_SECRET_PATTERNS) -> Any:
    """`value` for a diagnostic, or `(sensitive)` when its key looks like a secret."""
    return "(sensitive)" if isinstance(key, str) and is_secret_key(key, patterns) else value
