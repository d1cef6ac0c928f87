"""prefect.yaml as people write it today -> wp's deployment documents.

Owns the translation of Prefect's format (the older single `schedule:` (`{}` = none), top-level `pull` as
the default, `concurrency_limit: {limit: ...}`, explicit nulls meaning "not set") and the warnings for keys wp
does not act on (`build`, `push`, `triggers`, `enforce_parameter_schema`, ...), each reported once.

Must never do I/O or reject what Prefect accepts only because wp ignores it.
"""

from __future__ import annotations

import json
from pathlib import PurePath
from typing import Any

from reconciler.config.placeholders import PLACEHOLDER, step_ids, unresolvable
from reconciler.config.schema import DeploymentDoc, ScheduleDoc, WorkPoolRefDoc
from reconciler.config.sources import Path, Positions
from reconciler.diagnostics import Diagnostic

_BOOKKEEPING = {"name", "prefect-version", "definitions", "deployments", "pull"}
_NO_IMAGES = {"build", "push"}


class _Notes:
    """Collects diagnostics, each ignored key name once per file; carries what every deployment needs."""

    def __init__(self, positions: Positions, project_dir: str | None = None) -> None:
        self.positions = positions
        self.items: list[Diagnostic] = []
        self._seen: set[str] = set()
        self.project_dir = project_dir

    def ignored(self, what: str, path: Path, why: str) -> None:
        if what in self._seen:
            return
        self._seen.add(what)
        self.items.append(self.positions.warning(f"prefect.yaml: '{what}' is ignored", why, path, key=True))


def _without_nulls(value: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in value.items() if v is not None}


def _as_steps(steps: Any) -> Any:
    """Steps written as one step mapping are a one-step list, and `{}` is none, as Prefect's
    `_wrap_single_action_mappings` reads `build`/`push`/`pull`."""
    if isinstance(steps, dict):
        return [steps] if steps else None
    return steps


def _step_lists(value: dict[str, Any], path: Path, positions: Positions) -> dict[str, Any]:
    out = dict(value)
    for key in ("build", "push", "pull"):
        if isinstance(out.get(key), dict):
            if out[key]:
                positions.move((*path, key), (*path, key, 0), copy=True)
            out[key] = _as_steps(out[key])
            if out[key] is None:
                del out[key]
    return out


def _rrule_object(out: dict[str, Any]) -> None:
    """Prefect also takes an rrule schedule written as the JSON of its object, `'{"rrule": "...", "timezone":
    "..."}'`: unpack it (a timezone written beside it wins)."""
    text = out.get("rrule")
    if not isinstance(text, str) or not text.lstrip().startswith("{"):
        return
    try:
        value = json.loads(text)
    except ValueError:
        return  # left as written: the rrule check says what is wrong with it
    if isinstance(value, dict) and isinstance(value.get("rrule"), str):
        out["rrule"] = value["rrule"]
        if isinstance(value.get("timezone"), str):
            out.setdefault("timezone", value["timezone"])


def _schedule(raw: Any, path: Path, notes: _Notes) -> Any:
    if not isinstance(raw, dict):
        return raw
    out = _without_nulls(raw)
    _rrule_object(out)
    for key in list(out):
        if key not in ScheduleDoc.model_fields:
            notes.ignored(
                f"schedules.{key}", (*path, key), "wp does not act on it; remove it to silence this"
            )
            del out[key]
    return out


def _work_pool(raw: Any, path: Path, notes: _Notes) -> Any:
    if not isinstance(raw, dict):
        return raw
    out = _without_nulls(raw)
    for key in list(out):
        if key not in WorkPoolRefDoc.model_fields:
            notes.ignored(
                f"work_pool.{key}", (*path, key), "wp does not act on it; remove it to silence this"
            )
            del out[key]
    return out


_DOCKER_BUILD = "prefect_docker.deployments.steps.build_docker_image"
_SET_DIRECTORY = "prefect.deployments.steps.set_working_directory"


def _builds_image(steps: Any) -> bool:
    return isinstance(steps, list) and any(isinstance(step, dict) and _DOCKER_BUILD in step for step in steps)


def _own_steps(raw: dict[str, Any], document: dict[str, Any], kind: str) -> Any:
    """A deployment's `build`/`push` steps: its own when it has the key (even `null`: none), else the file's,
    as `prefect deploy` takes them (`deploy_config.get("build", actions.get("build"))`)."""
    return raw[kind] if kind in raw else document.get(kind)


def _recorded_pull(
    out: dict[str, Any], path: Path, notes: _Notes, *, docker_build: bool
) -> list[dict[str, Any]]:
    """The pull step `prefect deploy` records for a deployment that gives none (`_generate_default_pull_action`,
    non-interactive): the code is in the image it builds (/opt/prefect/<project directory name>), in the image it
    names (/opt/prefect, with a warning), or else in the directory it was run from: the project directory."""
    assert notes.project_dir is not None
    ref = out.get("work_pool")
    variables = ref.get("job_variables") if isinstance(ref, dict) else None
    if docker_build:
        directory = f"/opt/prefect/{PurePath(notes.project_dir).name}"
    elif isinstance(variables, dict) and variables.get("image"):
        directory = "/opt/prefect"
        notes.items.append(
            notes.positions.warning(
                f"deployment '{out.get('name')}' runs in its image from /opt/prefect",
                "it gives no pull steps, so (as `prefect deploy` does) its code is expected in the image at "
                "/opt/prefect; if it is elsewhere, add a set_working_directory pull step with its directory",
                path,
            )
        )
    else:
        directory = notes.project_dir
    return [{_SET_DIRECTORY: {"directory": directory}}]


def _deployment(raw: Any, path: Path, document: dict[str, Any], notes: _Notes) -> Any:
    if not isinstance(raw, dict):
        return raw
    positions = notes.positions
    build, push = (_as_steps(_own_steps(raw, document, kind)) for kind in ("build", "push"))
    out = _step_lists(_without_nulls(raw), path, positions)
    steps = {**step_ids(build, "build"), **step_ids(push, "push")}
    for key, value in out.items():
        if (
            key in DeploymentDoc.model_fields
        ):  # what wp registers; ignored keys (triggers) keep their templates
            notes.items += unresolvable(value, (*path, key), positions, steps, in_pull=key == "pull")
    if "schedule" in out:
        single = out.pop("schedule")
        if not single:
            pass  # `schedule: {}` (what `prefect deploy` writes) is no schedule, also beside `schedules:`
        elif "schedules" in out:
            notes.items.append(
                positions.error(
                    "both 'schedule' and 'schedules' are set",
                    "keep one: 'schedules' (a list) is the current form",
                    (*path, "schedule"),
                    key=True,
                )
            )
        else:
            out["schedules"] = [single]
            positions.move((*path, "schedule"), (*path, "schedules", 0))
    if isinstance(out.get("schedules"), list):
        out["schedules"] = [
            _schedule(s, (*path, "schedules", i), notes) for i, s in enumerate(out["schedules"])
        ]
    if "work_pool" in out:
        out["work_pool"] = _work_pool(out["work_pool"], (*path, "work_pool"), notes)
    limit = out.get("concurrency_limit")
    if isinstance(limit, dict):
        out["concurrency_limit"] = limit.get("limit")
        for key in sorted(set(limit) - {"limit"}):
            notes.ignored(
                f"concurrency_limit.{key}",
                (*path, "concurrency_limit", key),
                "wp enqueues runs over the limit",
            )
    if isinstance(out.get("tags"), str) and PLACEHOLDER.search(out["tags"]):
        del out["tags"]  # its placeholder is reported above, as inside a list; "not a list" would be noise
    default_pull = document.get("pull")
    if "pull" not in out and default_pull is not None:
        out["pull"] = default_pull
        positions.move(("pull",), (*path, "pull"), copy=True)
    if "pull" not in out and notes.project_dir is not None:
        out["pull"] = _recorded_pull(out, path, notes, docker_build=_builds_image(build))
    for key in list(out):
        if key in _NO_IMAGES:
            notes.ignored(key, (*path, key), "wp builds and pushes no images; build them in CI")
            del out[key]
        elif key not in DeploymentDoc.model_fields:
            notes.ignored(key, (*path, key), "wp does not act on it; remove it to silence this")
            del out[key]
    return out


def convert_prefect_document(
    document: Any, positions: Positions, project_dir: str | None = None
) -> tuple[Any, list[Diagnostic]]:
    """A prefect.yaml document -> `{"deployments": [...]}` in wp's format; `positions` is updated in place.

    `project_dir` (absolute) is where the file was read, recorded as the code's directory of deployments that
    give no pull steps, as `prefect deploy` records the directory it runs in."""
    notes = _Notes(positions, project_dir)
    if not isinstance(document, dict):
        return document, notes.items
    for key in document:
        if key in _NO_IMAGES and document[key]:
            notes.ignored(key, (key,), "wp builds and pushes no images; build them in CI")
        elif key not in _BOOKKEEPING and key not in _NO_IMAGES:
            notes.ignored(key, (key,), "wp does not act on it; remove it to silence this")
    document = _step_lists(document, (), positions)
    deployments = document.get("deployments")
    if not isinstance(deployments, list):
        return ({} if deployments is None else {"deployments": deployments}), notes.items
    if any(isinstance(d, dict) and d.get("pull") is None for d in deployments):  # the default is used
        steps = {**step_ids(document.get("build"), "build"), **step_ids(document.get("push"), "push")}
        notes.items += unresolvable(document.get("pull"), ("pull",), positions, steps, in_pull=True)
    converted = [_deployment(d, ("deployments", i), document, notes) for i, d in enumerate(deployments)]
    return {"deployments": converted}, notes.items
