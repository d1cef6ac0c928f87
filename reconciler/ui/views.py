"""What each web UI page shows, read through the Store protocol: plain dicts the templates render.

Owns gathering and shaping a page's facts (statuses, slots used against limits, late runs, owners, the
effective job variables and rendered job configuration, next runs of schedules) and masking secrets before
anything reaches a template. Must never write to the store (actions.py does), never speak SQL, and never
decide a status or a state itself: the store and `states` do.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from reconciler.errors import WpError
from reconciler.model import (
    DEFAULT_QUEUE,
    BaseJobTemplate,
    Deployment,
    FlowRun,
    Key,
    WorkPool,
    deployment_key,
    mask_secrets,
    pool_key,
    queue_key,
)
from reconciler.store.base import Store

ACTIVE = ("PENDING", "RUNNING", "CANCELLING")  # the states that take a slot (SPEC §1)
FINAL = ("COMPLETED", "FAILED", "CANCELLED", "CRASHED")
STATES = (
    "SCHEDULED",
    "LATE",
    "PENDING",
    "RUNNING",
    "COMPLETED",
    "FAILED",
    "CANCELLING",
    "CANCELLED",
    "CRASHED",
)
LATE_AFTER = timedelta(seconds=15)
RUNS_PAGE = 50


def is_late(run: FlowRun, now: datetime) -> bool:
    """LATE, or still SCHEDULED past the late threshold before the scheduler got to mark it."""
    return run.state == "LATE" or (run.state == "SCHEDULED" and run.expected_start_time + LATE_AFTER < now)


def _owners(store: Store, keys: Sequence[Key]) -> dict[Key, tuple[str | None, str | None]]:
    """(owner, status) of each object that exists, in one snapshot read."""
    if not keys:
        return {}
    snap = store.snapshot(only=keys)
    return {k: (o.owner, o.status) for k, o in snap.objects.items()}


def _slots(counts: Mapping[str, int]) -> int:
    return sum(counts.get(s, 0) for s in ACTIVE)


def run_row(run: FlowRun, now: datetime) -> dict[str, Any]:
    return {
        "id": run.id,
        "name": run.name,
        "deployment": run.deployment,
        "work_pool": run.work_pool,
        "work_queue": run.work_queue,
        "state": run.state,
        "message": run.state_message,
        "late": is_late(run, now),
        "expected": run.expected_start_time,
        "start": run.start_time,
        "end": run.end_time,
        "worker": run.worker,
    }


# ----------------------------------------------------------------------------------------------- pools


def _busy_counts(store: Store, limit: int = 10_000) -> dict[str, dict[str, int]] | None:
    """Runs taking a slot or late, counted by pool and state, in one read (there are few: limits bound them).
    None when there are more than `limit` (then each pool is counted on its own)."""
    runs = store.list_flow_runs(states=[*ACTIVE, "LATE"], limit=limit + 1)
    if len(runs) > limit:
        return None
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for run in runs:
        counts[run.work_pool][run.state] += 1
    return counts


def pools_overview(store: Store, now: datetime) -> list[dict[str, Any]]:
    pools = store.list_work_pools()
    facts = _owners(store, [pool_key(p.name) for p in pools])
    default = store.get_default_work_pool()
    busy = _busy_counts(store)
    rows = []
    for pool in pools:
        owner, status = facts.get(pool_key(pool.name), (None, None))
        counts = busy.get(pool.name, {}) if busy is not None else store.count_runs_by_state(pool.name)
        rows.append(
            {
                "name": pool.name,
                "type": pool.type,
                "status": status or store.work_pool_status(pool.name, now),
                "paused": pool.paused,
                "slots_used": _slots(counts),
                "limit": pool.concurrency_limit,
                "late": counts.get("LATE", 0),
                "owner": owner,
                "is_default": pool.name == default,
                "description": pool.description,
            }
        )
    return rows


def template_variables(template: BaseJobTemplate | None, patterns: tuple[str, ...]) -> list[dict[str, Any]]:
    """The template's variables with their type, default and description, secrets (by `patterns`) masked."""
    if template is None:
        return []
    props = template.variables.get("properties", {}) if isinstance(template.variables, Mapping) else {}
    required = (
        set(template.variables.get("required", ())) if isinstance(template.variables, Mapping) else set()
    )
    out = []
    for name, schema in sorted(props.items()):
        schema = schema if isinstance(schema, Mapping) else {}
        default = mask_secrets({name: schema.get("default")}, patterns)[name]
        out.append(
            {
                "name": name,
                "type": schema.get("type", ""),
                "has_default": "default" in schema,
                "default": default,
                "required": name in required,
                "description": schema.get("description") or schema.get("title") or "",
            }
        )
    return out


def default_job(pool: WorkPool, patterns: tuple[str, ...]) -> tuple[dict[str, Any] | None, str | None]:
    """The job configuration a run with no job variables gets (for Kubernetes, the exact Job a worker whose
    environment sets nothing submits, as `wp explain` shows it)."""
    from reconciler.runtime.executors.base import ExecutorError
    from reconciler.runtime.submission import preview

    if pool.base_job_template is None:
        return None, None
    try:
        return mask_secrets(preview(pool, None, {}), patterns), None
    except (WpError, ExecutorError) as exc:
        return None, str(exc)


def pool_detail(store: Store, name: str, now: datetime) -> dict[str, Any]:
    pool = store.get_work_pool(name)
    queues = sorted(store.list_work_queues(name), key=lambda q: (q.priority or 0, q.name))
    keys = [pool_key(name), *(queue_key(name, q.name) for q in queues)]
    facts = _owners(store, keys)
    owner, status = facts.get(pool_key(name), (None, None))
    status = status or store.work_pool_status(name, now)
    queue_rows = []
    for q in queues:
        q_owner, q_status = facts.get(queue_key(name, q.name), (None, None))
        counts = store.count_runs_by_state(name, q.name)
        queue_rows.append(
            {
                "name": q.name,
                "priority": q.priority,
                "limit": q.concurrency_limit,
                "slots_used": _slots(counts),
                "status": q_status or store.work_queue_status(name, q.name, now),
                "paused": q.paused,
                "late": counts.get("LATE", 0),
                "owner": q_owner,
                "description": q.description,
            }
        )
    counts = store.count_runs_by_state(name)
    patterns = store.secret_patterns()  # the defaults and the patterns applied projects added
    job, job_error = default_job(pool, patterns)
    upcoming = store.list_flow_runs(states=["SCHEDULED", "LATE"], work_pool=name, limit=RUNS_PAGE)
    active = store.list_flow_runs(states=list(ACTIVE), work_pool=name, limit=RUNS_PAGE)
    return {
        "pool": pool,
        "owner": owner,
        "pool_status": status,
        "slots_used": _slots(counts),
        "late": counts.get("LATE", 0),
        "counts": counts,
        "variables": template_variables(pool.base_job_template, patterns),
        "default_job": job,
        "default_job_error": job_error,
        "queues": queue_rows,
        "workers": store.list_workers(name, now),
        "deployments": store.list_deployments(name),
        "upcoming": [run_row(r, now) for r in upcoming],
        "active": [run_row(r, now) for r in active],
        "worker_command": f"wp worker start --pool {_shell_word(name)}",
    }


def _shell_word(text: str) -> str:
    import shlex

    return shlex.quote(text)


# ------------------------------------------------------------------------------------------------ runs


@dataclass(frozen=True)
class RunFilters:
    pool: str | None = None
    queue: str | None = None
    state: str | None = None
    deployment: str | None = None
    # paging: runs expected at or before `before`, skipping the first `skip` of those at exactly that time
    # (already shown on the previous page); the store orders by time then id, so the cursor is exact
    before: datetime | None = None
    skip: int = 0

    def query(self) -> dict[str, str]:
        values = {"pool": self.pool, "queue": self.queue, "state": self.state, "deployment": self.deployment}
        return {k: v for k, v in values.items() if v}


def runs_page(store: Store, filters: RunFilters, now: datetime, limit: int = RUNS_PAGE) -> dict[str, Any]:
    """One page of runs, the newest expected start first, and the cursor of the next (older) page. Reads
    about `limit` rows whatever the table holds, so 100,000 runs page as fast as 100."""
    skip = filters.skip if filters.before is not None else 0
    runs = store.list_flow_runs(
        states=[filters.state] if filters.state else [],
        work_pool=filters.pool,
        work_queue=filters.queue,
        deployment=filters.deployment,
        before=filters.before,
        limit=skip + limit + 1,
        newest_first=True,
    )[skip:]
    page = runs[:limit]
    cursor: dict[str, str] | None = None
    if len(runs) > limit:
        last = page[-1].expected_start_time
        same = sum(1 for r in page if r.expected_start_time == last)
        if filters.before is not None and last == filters.before:
            same += skip
        cursor = {"before": last.isoformat(), "skip": str(same)}
    return {"runs": [run_row(r, now) for r in page], "older": cursor}


def run_detail(store: Store, run_id: str, now: datetime) -> dict[str, Any]:
    """A run with its state history, parameters, and the job configuration its worker renders (or would)."""
    from reconciler.engine.template import render_job_configuration

    run = store.get_flow_run(run_id)
    patterns = store.secret_patterns()  # the defaults and the patterns applied projects added
    job: dict[str, Any] | None = None
    job_error: str | None = None
    deployment: Deployment | None = None
    try:
        flow, _, name = run.deployment.partition("/")
        deployment = store.get_deployment(flow, name)
        pool = store.get_work_pool(run.work_pool)
        context = {
            "flow_run": {"id": run.id, "name": run.name, "parameters": run.parameters},
            "deployment": {"flow": deployment.flow, "name": deployment.name},
            "work_pool": {"name": pool.name, "type": pool.type},
            "worker": {"name": run.worker or ""},
        }
        job = render_job_configuration(
            pool.base_job_template or BaseJobTemplate(),
            deployment.job_variables,
            run.job_variables,
            context=context,
        )
        job.setdefault("name", run.name)
        job = mask_secrets(job, patterns)
    except WpError as exc:
        job_error = str(exc)
    return {
        "run": run,
        "row": run_row(run, now),
        "final": run.state in FINAL,
        "cancellable": run.state not in FINAL and run.state != "CANCELLING",
        "history": store.read_run_history(run.id),
        "parameters": mask_secrets(run.parameters, patterns),
        "job_variables": mask_secrets(run.job_variables, patterns),
        "job": job,
        "job_error": job_error,
        "deployment_exists": deployment is not None,
    }


# ----------------------------------------------------------------------------------------- deployments


def deployments_overview(store: Store) -> list[dict[str, Any]]:
    deployments = store.list_deployments()
    facts = _owners(store, [deployment_key(d.flow, d.name) for d in deployments])
    default = store.get_default_work_pool()
    return [
        {
            "address": f"{d.flow}/{d.name}",
            "flow": d.flow,
            "name": d.name,
            "entrypoint": d.entrypoint,
            "work_pool": d.work_pool or default,
            "work_queue": d.work_queue or DEFAULT_QUEUE,
            "schedules": len(d.schedules),
            "paused": d.paused,
            "owner": facts.get(deployment_key(d.flow, d.name), (None, None))[0],
        }
        for d in deployments
    ]


def _schedule_text(schedule: Any) -> str:
    if schedule.cron:
        return f"cron {schedule.cron}" + (f" ({schedule.timezone})" if schedule.timezone else "")
    if schedule.interval is not None:
        return f"every {schedule.interval:g} s"
    return f"rrule {schedule.rrule}"


def deployment_detail(store: Store, flow: str, name: str, now: datetime) -> dict[str, Any]:
    """A deployment, its schedules with the runs they have queued next, and its effective job variables
    (what `wp explain` shows: defaults < deployment, and where each value comes from)."""
    from reconciler.engine.template import effective_variables, explain_job_configuration
    from reconciler.runtime.executors.base import ExecutorError
    from reconciler.runtime.submission import preview

    d = store.get_deployment(flow, name)
    patterns = store.secret_patterns()
    address = f"{flow}/{name}"
    owner = _owners(store, [deployment_key(flow, name)]).get(deployment_key(flow, name), (None, None))[0]
    pool_name = d.work_pool or store.get_default_work_pool()
    upcoming = store.list_flow_runs(states=["SCHEDULED", "LATE"], deployment=address, limit=200)
    next_by_slug: dict[str | None, list[datetime]] = defaultdict(list)
    for r in upcoming:
        if len(next_by_slug[r.schedule_slug]) < 3:
            next_by_slug[r.schedule_slug].append(r.expected_start_time)
    schedules = [
        {"slug": s.slug, "text": _schedule_text(s), "active": s.active, "next": next_by_slug.get(s.slug, [])}
        for s in d.schedules
    ]
    variables: list[dict[str, Any]] = []
    job: dict[str, Any] | None = None
    problem: str | None = None
    if pool_name is None:
        problem = "this deployment names no work pool and no default pool is set"
    else:
        try:
            pool = store.get_work_pool(pool_name)
            template = pool.base_job_template or BaseJobTemplate()
            values = mask_secrets(effective_variables(template, d.job_variables, None), patterns)
            sources = explain_job_configuration(template, d.job_variables, None)
            job = mask_secrets(preview(pool, d, {}), patterns)
            for var, source in sorted(sources.items()):
                value: Any = job if source == "pool" else values
                for part in var.split("."):
                    value = value.get(part) if isinstance(value, dict) else None
                variables.append({"name": var, "value": value, "source": source})
        except (WpError, ExecutorError) as exc:
            problem = str(exc)
    recent = store.list_flow_runs(deployment=address, limit=20, newest_first=True, before=now)
    return {
        "deployment": d,
        "address": address,
        "owner": owner,
        "work_pool": pool_name,
        "work_queue": d.work_queue or DEFAULT_QUEUE,
        "schedules": schedules,
        "parameters": mask_secrets(d.parameters, patterns),
        "job_variables": mask_secrets(d.job_variables, patterns),
        "variables": variables,
        "job": job,
        "problem": problem,
        "upcoming": [run_row(r, now) for r in upcoming[:10]],
        "recent": [run_row(r, now) for r in recent],
    }


# --------------------------------------------------------------------------------------------- history


def history(store: Store, limit: int = 100) -> list[dict[str, Any]]:
    return [
        {
            "id": rec.id,
            "time": rec.time,
            "actor": rec.actor,
            "project": rec.project,
            "commit": rec.git_commit,
            "branch": rec.git_branch,
            "dirty": rec.git_dirty,
            "summary": dict(rec.summary),
            "plan_hash": rec.plan_hash,
            "addresses": list(rec.addresses),
        }
        for rec in store.list_history(limit=limit)
    ]
