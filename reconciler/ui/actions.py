"""The web UI's actions (POST): pause and resume pools and queues, cancel a run, trigger a deployment's run,
edit an unmanaged pool's limit and description.

Owns the rule "a project's objects are read-only here; only operational actions are offered": pausing,
resuming, cancelling and triggering work on any object, while editing an attribute is refused for an object
a project manages ("change it in git"). Every action needs the session's CSRF token (a form field `csrf` or
the header `X-CSRF-Token`), unless the request carries the API's bearer header, which a foreign page cannot
forge. Answers JSON to the page's script and a redirect to a plain form post. Must never decide a run state
or a status: the store does.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from starlette.datastructures import FormData
from starlette.responses import JSONResponse, RedirectResponse, Response

from reconciler.errors import ConflictError, NotFoundError, ValidationError
from reconciler.model import Key, pool_key
from reconciler.store.base import Store, SyncKey
from reconciler.ui.session import Sessions

router = APIRouter(prefix="/actions")
FINAL = ("COMPLETED", "FAILED", "CANCELLED", "CRASHED")


def wants_json(request: Request) -> bool:
    return request.headers.get("x-wp-fetch") == "1" or "application/json" in request.headers.get("accept", "")


async def _checked_form(request: Request) -> FormData | Response:
    """The posted form, or the refusal of a request without the session's CSRF token."""
    form = await request.form()
    sessions: Sessions = request.app.state.sessions
    token = request.headers.get("x-csrf-token") or str(form.get("csrf") or "")
    if request.state.bearer or sessions.csrf_matches(request.state.session, token):
        return form
    return JSONResponse(
        {"ok": False, "message": "missing or wrong CSRF token: reload the page and try again"},
        status_code=403,
    )


def _done(request: Request, form: FormData, message: str, location: str | None = None) -> Response:
    base = str(request.scope.get("root_path", "")).rstrip("/")
    back = str(form.get("back") or "")
    target = location or (back if back.startswith(base + "/") and not back.startswith("//") else base + "/")
    if wants_json(request):
        return JSONResponse({"ok": True, "message": message, "location": location})
    return RedirectResponse(target, status_code=303)


def _refuse(request: Request, message: str, status: int = 409) -> Response:
    if wants_json(request):
        return JSONResponse({"ok": False, "message": message}, status_code=status)
    pages = request.app.state.pages
    return pages.render(request, "error.html", status_code=status, message=message)  # type: ignore[no-any-return]


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _wake(request: Request, pool: str) -> None:
    """Runs of `pool` may be claimable now (resumed, a limit raised, a run created, a slot freeing)."""
    request.app.state.notify(pool)


def _owner(store: Store, key: Key) -> str | None:
    found = store.snapshot(only=[key]).get(key)
    return found.owner if found is not None else None


@router.post("/pools/{name}/{verb}", include_in_schema=False)
async def pool_pause(request: Request, name: str, verb: str) -> Response:
    form = await _checked_form(request)
    if isinstance(form, Response):
        return form
    if verb not in ("pause", "resume"):
        return _refuse(request, f"unknown action {verb!r} on a work pool", 404)
    _store(request).update_work_pool(name, paused=verb == "pause")
    _wake(request, name)
    return _done(request, form, f"{'Paused' if verb == 'pause' else 'Resumed'} work pool {name}.")


@router.post("/pools/{name}", include_in_schema=False)
async def pool_edit(request: Request, name: str) -> Response:
    """Edit the concurrency limit and description of a pool made by hand (never one a project manages)."""
    form = await _checked_form(request)
    if isinstance(form, Response):
        return form
    store = _store(request)
    owner = _owner(store, pool_key(name))
    if owner is not None:
        return _refuse(request, f"work pool {name} is managed by project {owner}: change it in git")
    raw_limit = str(form.get("concurrency_limit") or "").strip()
    if raw_limit and (not raw_limit.isdigit() or int(raw_limit) < 1):
        return _refuse(
            request, f"concurrency limit {raw_limit!r} must be a positive whole number or empty", 422
        )
    description = str(form.get("description") or "").strip() or None
    store.update_work_pool(
        name, concurrency_limit=int(raw_limit) if raw_limit else None, description=description
    )
    _wake(request, name)
    return _done(request, form, f"Saved work pool {name}.")


@router.post("/queues/{pool}/{name}/{verb}", include_in_schema=False)
async def queue_pause(request: Request, pool: str, name: str, verb: str) -> Response:
    form = await _checked_form(request)
    if isinstance(form, Response):
        return form
    if verb not in ("pause", "resume"):
        return _refuse(request, f"unknown action {verb!r} on a work queue", 404)
    _store(request).update_work_queue(pool, name, paused=verb == "pause")
    _wake(request, pool)
    return _done(request, form, f"{'Paused' if verb == 'pause' else 'Resumed'} work queue {pool}/{name}.")


@router.post("/runs/{run_id}/cancel", include_in_schema=False)
async def run_cancel(request: Request, run_id: str) -> Response:
    """As `wp flow-run cancel`: a run not started becomes CANCELLED, a claimed or running one CANCELLING."""
    form = await _checked_form(request)
    if isinstance(form, Response):
        return form
    store = _store(request)
    run = store.get_flow_run(run_id)
    if run.state in FINAL:
        return _refuse(
            request, f"flow run {run.name} is already {run.state}; only unfinished runs can be cancelled"
        )
    if run.state != "CANCELLING":
        target = "CANCELLED" if run.state in ("SCHEDULED", "LATE") else "CANCELLING"
        try:
            store.set_run_state(
                run_id,
                target,
                message="cancelled from the web UI",
                expected=[run.state],
                now=datetime.now(UTC),
                actor="web UI",
            )
        except ConflictError:
            return _refuse(request, f"flow run {run.name} changed state meanwhile; look again and retry")
        _wake(request, run.work_pool)
    return _done(request, form, f"Cancelling flow run {run.name}.")


def _json_object(text: str, field: str) -> dict[str, Any]:
    text = text.strip()
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ValidationError(f"{field} is not valid JSON: {exc}", path=(field,)) from None
    if not isinstance(value, dict):
        raise ValidationError(f'{field} must be a JSON object such as {{"x": 1}}', path=(field,))
    return value


@router.post("/deployments/{flow}/{name}/run", include_in_schema=False)
async def deployment_run(request: Request, flow: str, name: str) -> Response:
    """Create a run of the deployment now, as `wp deployment run`; parameters override the deployment's."""
    from reconciler.engine.template_variables import validate_job_variables
    from reconciler.parameters import check_run_parameters
    from reconciler.runtime.scheduler import manual_run

    form = await _checked_form(request)
    if isinstance(form, Response):
        return form
    store = _store(request)
    deployment = store.get_deployment(flow, name)
    try:
        params = _json_object(str(form.get("parameters") or ""), "parameters")
        job_vars = _json_object(str(form.get("job_variables") or ""), "job_variables")
    except ValidationError as exc:
        return _refuse(request, str(exc), 422)
    wrong = check_run_parameters(deployment.parameter_schema, {**deployment.parameters, **params})
    if wrong:
        return _refuse(request, "parameters: " + "; ".join(wrong), 422)
    pool_name = deployment.work_pool or store.get_default_work_pool()
    if pool_name is None:
        return _refuse(
            request, f"deployment {flow}/{name} names no work pool and no default pool is set", 422
        )
    template = store.get_work_pool(pool_name).base_job_template
    if job_vars and template is not None:
        problems = validate_job_variables(template, {**deployment.job_variables, **job_vars}, for_run=True)
        if problems:
            return _refuse(request, "job_variables: " + "; ".join(str(p) for p in problems), 422)
    at = datetime.now(UTC)
    run = store.create_flow_run(
        manual_run(
            deployment,
            pool_name,
            parameters=params,
            job_variables=job_vars,
            created=at,
            expected_start_time=at,
        )
    )
    _wake(request, run.work_pool)
    base = str(request.scope.get("root_path", "")).rstrip("/")
    return _done(request, form, f"Created flow run {run.name}.", location=f"{base}/runs/{run.id}")


@router.post("/sync/{verb}", include_in_schema=False)
async def sync_control(request: Request, verb: str, repo: str, branch: str, path: str) -> Response:
    """As `wp sync now|suspend|resume` for one sync: a running loop notices within about a second."""
    form = await _checked_form(request)
    if isinstance(form, Response):
        return form
    if verb not in ("now", "suspend", "resume"):
        return _refuse(request, f"unknown action {verb!r} on a sync", 404)
    key = SyncKey(repo=repo, branch=branch, path=path)
    suspend = {"suspend": True, "resume": False}.get(verb)
    try:
        _store(request).control_sync(key, suspend=suspend, request=verb == "now", now=datetime.now(UTC))
    except NotFoundError as exc:
        return _refuse(request, str(exc), 404)
    said = {"now": "Asked for a sync pass of", "suspend": "Suspended", "resume": "Resumed"}[verb]
    return _done(request, form, f"{said} {key}.")
