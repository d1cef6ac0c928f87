"""Pull steps as configured: each one names a step wp runs, checked when the config is validated (SPEC §2).

Owns the config-time check of `pull:` lists; the step names and their spellings come from the runtime module
that runs them (reconciler.runtime.pull_steps, standard library only), so both always agree.

Must never do I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from reconciler.config.schema import DeploymentDoc
from reconciler.config.sources import Path, Positions
from reconciler.diagnostics import Diagnostic
from reconciler.runtime.pull_steps import STEPS, step_name

SUPPORTED = ", ".join(sorted(STEPS))


def _step_problem(step: Any, index: int, at: Path, positions: Positions) -> Diagnostic | None:
    if not isinstance(step, Mapping) or len(step) != 1:
        return positions.error(
            f"pull step {index + 1} must be a mapping with one key, the step's name",
            "write `- prefect.deployments.steps.git_clone: {repository: ...}`; wp runs " + SUPPORTED,
            at,
        )
    raw, args = next(iter(step.items()))
    if step_name(str(raw)) not in STEPS:
        return positions.error(
            f"pull step '{raw}' is not one wp runs",
            f"wp runs {SUPPORTED} (named prefect.deployments.steps.<step>, prefect.projects.steps.<step> or "
            "<step>); fetch the code another way, e.g. run_shell_script, or bake it into the image",
            (*at, raw),
            key=True,
        )
    if args is not None and not isinstance(args, Mapping):
        return positions.error(
            f"the arguments of pull step '{raw}' must be a mapping",
            "write `- " + str(raw) + ": {name: value, ...}`",
            (*at, raw),
        )
    return None


def pull_step_problems(
    deployments: Iterable[tuple[int, DeploymentDoc]], positions: Positions
) -> list[Diagnostic]:
    """One error per pull step wp cannot run; a step shared by many deployments (prefect.yaml's top-level
    `pull:`) is reported once, at its line."""
    out: list[Diagnostic] = []
    seen: set[tuple[str | None, int | None, int | None, str]] = set()
    for index, doc in deployments:
        for k, step in enumerate(doc.pull or ()):
            problem = _step_problem(step, k, ("deployments", index, "pull", k), positions)
            if problem is None:
                continue
            spot = (problem.file, problem.line, problem.column, problem.summary)
            if spot not in seen:
                seen.add(spot)
                out.append(problem)
    return out
