"""Prefect placeholders that only `prefect deploy` can resolve, found in a prefect.yaml deployment.

Owns the rule of SPEC §2 "prefect.yaml fidelity": an output of a `build`/`push` step (`{{ build-image.image }}`),
a block (`{{ prefect.blocks.secret.x }}`) or a Prefect variable (`{{ prefect.variables.x }}`) is an error at
its line naming what wp cannot resolve and how to give the value instead; never stored as literal text.
Placeholders are found as Prefect finds them (`prefect.utilities.templating.PLACEHOLDER_CAPTURE_REGEX`).
`{{ $VAR }}` is the environment (normalize resolves it), and inside `pull:` a reference to an earlier pull step's
`id` is resolved by the worker before the step runs, as Prefect's `run_steps` does.

Must never do I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from reconciler.config.sources import Path, Positions
from reconciler.diagnostics import Diagnostic

PLACEHOLDER = re.compile(r"\{\{\s*([\w.\-\[\]$]+)\s*\}\}")
BLOCKS = "prefect.blocks."
VARIABLES = "prefect.variables."
# Prefect keeps `{{ ctx.* }}` for the worker to fill at run time; it is not a deploy-time value.
RUN_TIME = ("$", "ctx.")


def step_ids(steps: Any, kind: str) -> dict[str, str]:
    """`id` of each step in a `build:`/`push:` list -> the kind ("build" or "push")."""
    found: dict[str, str] = {}
    for step in steps if isinstance(steps, list) else []:
        if isinstance(step, Mapping) and len(step) == 1:
            args = next(iter(step.values()))
            if isinstance(args, Mapping) and isinstance(args.get("id"), str):
                found[args["id"]] = kind
    return found


def _strings(value: Any, path: Path) -> Iterator[tuple[str, Path]]:
    if isinstance(value, str):
        yield value, path
    elif isinstance(value, Mapping):
        for key, child in value.items():
            yield from _strings(child, (*path, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _strings(child, (*path, i))


def _field(path: Path) -> str:
    names = [p for p in path if isinstance(p, str)]
    return names[-1] if names else "value"


def _env_name(field: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", field).strip("_").upper() or "VALUE"


def _how(path: Path, in_pull: bool) -> str:
    field = _field(path)
    literal = f"give the value literally ({field}: ...)"
    from_plan = f"from the environment of `wp plan` ({field}: ${{{_env_name(field)}}})"
    if in_pull:
        return (
            f"{literal}, {from_plan}, or from the worker's environment when the step runs "
            f"({field}: '{{{{ ${_env_name(field)} }}}}')"
        )
    return f"{literal}, or {from_plan}"


def _problem(name: str, steps: Mapping[str, str], pull_ids: set[str]) -> tuple[str, str] | None:
    """(what it is, why wp cannot resolve it), or None when wp resolves it."""
    if name.startswith(RUN_TIME):
        return None
    if name.startswith(BLOCKS):
        return "is a Prefect block, which wp cannot read", "wp has no blocks"
    if name.startswith(VARIABLES):
        return "is a Prefect variable, which wp cannot read", "wp has no Prefect variables"
    step = name.split(".", 1)[0]
    if step in pull_ids:
        return None
    if step in steps:
        kind = steps[step]
        return (
            f"is an output of {kind} step '{step}', which wp does not run",
            "`prefect deploy` fills it when it runs the step; wp builds and pushes nothing (build in CI)",
        )
    return (
        "refers to no step this deployment runs",
        "`prefect deploy` fills such placeholders from build and push step outputs only (it drops unknown ones)",
    )


def unresolvable(
    value: Any, path: Path, positions: Positions, steps: Mapping[str, str], *, in_pull: bool = False
) -> list[Diagnostic]:
    """One error per placeholder in `value` (at `path`) that wp cannot resolve. `steps` maps the ids of the
    file's build/push steps to their kind; with `in_pull`, `value` is a list of pull steps whose ids are
    known to later steps."""
    out: list[Diagnostic] = []
    pull_ids: set[str] = set()
    items = list(enumerate(value)) if in_pull and isinstance(value, list) else [(None, value)]
    for index, item in items:
        at = path if index is None else (*path, index)
        for text, where in _strings(item, at):
            for match in PLACEHOLDER.finditer(text):
                problem = _problem(match.group(1), steps, pull_ids)
                if problem is not None:
                    what, why = problem
                    out.append(
                        positions.error(f"'{match.group(0)}' {what}", f"{why}: {_how(where, in_pull)}", where)
                    )
        if in_pull and isinstance(item, Mapping) and len(item) == 1:
            args = next(iter(item.values()))
            if isinstance(args, Mapping) and isinstance(args.get("id"), str):
                pull_ids.add(args["id"])
    return out
