"""`wp ci`: what the GitHub Action runs (SPEC §7). Plans, applies only what a pull request reviewed, or reports
drift; reports through step outputs, the job summary and one PR comment per project path.

A thin adapter over reconciler.pipeline, reconciler.engine.apply and the GitHub edges (gitops.actions for the
runner's files, gitops.github for the REST API, gitops.pr_comment for the comment's text). Outside GitHub it
still plans and prints. Every run writes all outputs, `failure-reason` included, before it exits (once it could
read GitHub's event file).

Exit codes: 0 done (changes are not a failure in CI), 1 error or refusal, 2 drift found (`--mode drift`),
3 the plan changed since review, a stale plan or a held lock.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from reconciler.cli.context import (
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_OK,
    EXIT_STALE,
    actor,
    console,
    environ,
    err_console,
    keep_until_exit,
    now,
    open_store,
    print_diagnostics,
    print_json,
)
from reconciler.cli.reconcile import PruneOpt

if TYPE_CHECKING:
    from reconciler.engine.plan import Change, Plan
    from reconciler.errors import WpError
    from reconciler.gitops.actions import ActionsRun
    from reconciler.gitops.pr_comment import CommentHeader
    from reconciler.store.base import Store


class CiMode(StrEnum):
    plan = "plan"
    apply = "apply"
    drift = "drift"


class FailureReason(StrEnum):
    INVALID_CONFIG = "invalid-config"  # the configuration has errors: no plan
    PLAN_REFUSED = "plan-refused"  # a safety rule refused the plan (protect, mass delete, target)
    PLAN_CHANGED = "plan-changed"  # apply: the plan differs from the one reviewed on the pull request
    NO_REVIEWED_PLAN = "no-reviewed-plan"  # apply: no pull request or no plan comment to compare with
    STALE_PLAN = "stale-plan"  # apply: an object the plan touches changed while it was being applied
    STATE_LOCKED = "state-locked"  # apply: another apply holds the lock
    APPLY_FAILED = "apply-failed"  # apply: the store refused the write
    GITHUB_ERROR = "github-error"  # GitHub refused a request or could not be reached
    ERROR = "error"  # anything else (the store could not be opened, ...)


OUTPUTS = ("changes", "to-add", "to-change", "to-destroy", "plan-hash", "failure-reason")


class _Stop(Exception):
    """Ends a CI run with a failure reason; the outputs are still written."""

    def __init__(
        self, reason: FailureReason, message: str | None, code: int, hint: str | None = None
    ) -> None:
        super().__init__(message or reason.value)
        self.reason, self.message, self.code, self.hint = reason, message, code, hint


@dataclass
class _Run:
    """One `wp ci` invocation: its options, the GitHub run it is part of, and the outputs it fills in."""

    gh: ActionsRun
    directory: Path
    path: str  # the normalized `--path`: the key of this project's PR comment
    prune: bool | None
    comment: bool
    auto_approve: bool
    json_out: bool
    outputs: dict[str, str] = field(
        default_factory=lambda: {
            "changes": "false",
            "to-add": "0",
            "to-change": "0",
            "to-destroy": "0",
            "plan-hash": "",
            # Cleared on success: a run cut short by an unexpected error must not look like a success.
            "failure-reason": FailureReason.ERROR.value,
        }
    )


def ci(
    mode: CiMode = typer.Option(..., "--mode", help="plan | apply | drift.", case_sensitive=False),
    path: Path = typer.Option(Path("."), "--path", help="The project directory (holds wp.yaml)."),
    prune: bool | None = PruneOpt,
    comment: bool = typer.Option(
        True,
        "--comment/--no-comment",
        help="On a pull request, post the plan as one comment, updated in place.",
    ),
    auto_approve: bool = typer.Option(
        False,
        "--auto-approve",
        help="apply: apply without comparing with the plan reviewed on the pull request.",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print only the outputs, as a JSON object."),
) -> None:
    """Run wp in a GitHub workflow: plan on a pull request, apply on merge, or check for drift.

    Writes the step outputs and the job summary; on a pull request, keeps one comment with the plan.

    apply plans again and refuses (plan-changed, exit 3) if the plan differs from the one reviewed on the PR."""
    from reconciler.errors import WpError
    from reconciler.gitops.actions import actions_run
    from reconciler.gitops.pr_comment import normalize_path

    run = _Run(
        gh=actions_run(environ()),
        directory=path,
        path=normalize_path(str(path)),
        prune=prune,
        comment=comment,
        auto_approve=auto_approve,
        json_out=json_out,
    )
    code = EXIT_ERROR
    try:
        try:
            code = _MODES[mode](run, open_store())
            run.outputs["failure-reason"] = ""
        except _Stop as stop:
            run.outputs["failure-reason"] = stop.reason.value
            code = stop.code
            if stop.message:
                _error(stop.message, stop.hint)
        except WpError as exc:
            reason, code = _reason_of(exc)
            run.outputs["failure-reason"] = reason.value
            _error(exc.message)
    finally:
        _report(run)
    raise typer.Exit(code)


def _reason_of(exc: WpError) -> tuple[FailureReason, int]:
    from reconciler.errors import ConfigError, LockHeldError, PlanError, StalePlanError
    from reconciler.gitops.github import GitHubError

    for kind, reason in (
        (StalePlanError, FailureReason.STALE_PLAN),
        (LockHeldError, FailureReason.STATE_LOCKED),
        (ConfigError, FailureReason.INVALID_CONFIG),
        (PlanError, FailureReason.PLAN_REFUSED),
        (GitHubError, FailureReason.GITHUB_ERROR),
    ):
        if isinstance(exc, kind):
            return reason, exc.exit_code
    return FailureReason.ERROR, exc.exit_code


def _error(message: str, hint: str | None = None) -> None:
    from rich.markup import escape

    err_console.print(f"[bold red]Error:[/bold red] {escape(message)}")
    if hint:
        err_console.print(f"  {escape(hint)}")


def _info(message: str) -> None:
    from rich.markup import escape

    err_console.print(escape(message))


def _report(run: _Run) -> None:
    from reconciler.gitops.actions import append_outputs

    if run.gh.output_file is not None:
        append_outputs(run.gh.output_file, run.outputs)
    if run.json_out:
        print_json(run.outputs)


def _summary(run: _Run, markdown: str) -> None:
    from reconciler.gitops.actions import append_summary

    if run.gh.summary_file is not None:
        append_summary(run.gh.summary_file, markdown)


def _show(run: _Run, plan: Plan) -> None:
    """The plan in the job log, as `wp plan` prints it."""
    from reconciler.engine.render import render_text

    if not run.json_out:
        text = render_text(plan, color=console.is_terminal)
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()


def _set_outputs(run: _Run, plan: Plan, *, changes: bool) -> None:
    from reconciler.engine.plan import plan_to_json

    s = plan.summary
    run.outputs |= {
        "changes": "true" if changes else "false",
        "to-add": str(s.add),
        "to-change": str(s.change),
        "to-destroy": str(s.destroy),
        "plan-hash": str(plan_to_json(plan)["plan_hash"]),
    }


# ------------------------------------------------------------------------------------------------- planning


def _plan(run: _Run, store: Store, *, comment_on_failure: bool) -> Plan:
    """The plan of the project, or a _Stop after reporting why there is none (on the PR too, when asked)."""
    from reconciler.errors import PlanError
    from reconciler.gitops.pr_comment import CommentHeader, diagnostics_markdown, refused_markdown
    from reconciler.pipeline import plan_project

    try:
        outcome = plan_project(run.directory, store, env=environ(), now=now(), prune=run.prune)
    except PlanError as exc:
        markdown = refused_markdown(run.path, exc.message)
        _summary(run, markdown)
        if comment_on_failure:
            _post_comment(run, CommentHeader(run.path, None), markdown)
        raise _Stop(FailureReason.PLAN_REFUSED, exc.message, EXIT_ERROR) from exc
    keep_until_exit(outcome)
    if outcome.diagnostics:
        print_diagnostics(outcome.diagnostics)
    if outcome.plan is None:
        markdown = diagnostics_markdown(run.path, outcome.diagnostics)
        _summary(run, markdown)
        if comment_on_failure:
            _post_comment(run, CommentHeader(run.path, None), markdown)
        raise _Stop(FailureReason.INVALID_CONFIG, None, EXIT_ERROR)
    return outcome.plan


def _post_comment(run: _Run, header: CommentHeader, markdown: str) -> None:
    """Create or update this path's comment on the pull request of a `pull_request` event."""
    from reconciler.gitops.github import GitHubClient, publish_plan_comment
    from reconciler.gitops.pr_comment import comment_body

    gh, number = run.gh, run.gh.pull_request_number
    if not run.comment or number is None:
        return
    if not gh.token or not gh.repository:
        _info("Warning: no GITHUB_TOKEN or GITHUB_REPOSITORY: the plan is not posted on the pull request.")
        return
    at = f" at {gh.head_sha[:7]}" if gh.head_sha else ""
    run_link = f" · [workflow run]({gh.run_url})" if gh.run_url else ""
    footer = (
        f"<sub>`wp ci` plan of `{run.path}`{at}{run_link}. Apply after merge plans again and refuses if the "
        "plan differs from this one.</sub>"
    )
    body = comment_body(header, markdown, footer=footer)
    with GitHubClient(gh.token, api_url=gh.api_url) as client:
        posted, created = publish_plan_comment(client, gh.repository, number, run.path, body)
    verb = "Posted" if created else "Updated"
    _info(f"{verb} the plan comment on pull request #{number}: {posted.url or posted.id}")


# ---------------------------------------------------------------------------------------------------- modes


def _plan_mode(run: _Run, store: Store) -> int:
    from reconciler.engine.plan import plan_to_json
    from reconciler.engine.render import render_markdown
    from reconciler.gitops.pr_comment import CommentHeader

    plan = _plan(run, store, comment_on_failure=True)
    _set_outputs(run, plan, changes=plan.has_changes)
    _show(run, plan)
    markdown = render_markdown(plan)
    _summary(run, markdown)
    _post_comment(run, CommentHeader(run.path, str(plan_to_json(plan)["plan_hash"])), markdown)
    return EXIT_OK


def _apply_mode(run: _Run, store: Store) -> int:
    from reconciler.engine.apply import apply_plan
    from reconciler.engine.render import render_markdown
    from reconciler.errors import LockHeldError, StalePlanError, WpError
    from reconciler.gitops.repo import repo_facts

    plan = _plan(run, store, comment_on_failure=False)
    _set_outputs(run, plan, changes=plan.has_changes)
    _show(run, plan)
    title = f"### wp apply: project `{plan.project}`"
    if not plan.has_changes:
        # Nothing to write, so nothing that needs a review (a merge that touched no wp file lands here).
        _summary(run, f"{title}\n\n**No changes.** Nothing to apply.\n")
        _info("No changes. Nothing to apply.")
        return EXIT_OK
    if run.auto_approve:
        _info("--auto-approve: applying without comparing with a reviewed plan.")
    else:
        _check_reviewed(run, plan)
    try:
        apply_plan(store, plan, actor=_actor(run.gh), repo=repo_facts(run.directory), notice=_info)
    except (StalePlanError, LockHeldError):
        raise
    except WpError as exc:
        raise _Stop(FailureReason.APPLY_FAILED, exc.message, exc.exit_code) from exc
    s = plan.summary
    done = f"Apply complete! Resources: {s.add} added, {s.change} changed, {s.destroy} destroyed."
    if not run.json_out:
        console.print(f"[bold green]{done}[/bold green]")
    _summary(run, f"{title}\n\n**{done}**\n\n{render_markdown(plan)}")
    return EXIT_OK


def _check_reviewed(run: _Run, plan: Plan) -> None:
    """Refuse unless the plan equals the one last posted on the pull request this commit came from."""
    from reconciler.engine.plan import plan_to_json
    from reconciler.engine.render import render_markdown
    from reconciler.gitops.github import GitHubClient, find_plan_comment, pull_request_of_commit
    from reconciler.gitops.pr_comment import HEADER_VERSION

    gh = run.gh
    hint = "apply through a reviewed pull request, or pass --auto-approve (the action's `auto-approve` input)"
    if not gh.token or not gh.repository:
        raise _Stop(
            FailureReason.NO_REVIEWED_PLAN,
            "no GITHUB_TOKEN and GITHUB_REPOSITORY to find the plan reviewed on a pull request",
            EXIT_ERROR,
            hint,
        )
    with GitHubClient(gh.token, api_url=gh.api_url) as client:
        number = gh.pull_request_number
        sha = gh.pushed_sha
        if number is None and sha:
            number = pull_request_of_commit(client, gh.repository, sha)
        if number is None:
            raise _Stop(
                FailureReason.NO_REVIEWED_PLAN,
                f"commit {sha or '(unknown)'} did not come from a pull request: there is no reviewed plan",
                EXIT_ERROR,
                hint,
            )
        found = find_plan_comment(client, gh.repository, number, run.path)
    if found is None:
        raise _Stop(
            FailureReason.NO_REVIEWED_PLAN,
            f"pull request #{number} has no wp plan comment for `{run.path}`: there is no reviewed plan",
            EXIT_ERROR,
            hint,
        )
    comment, header = found
    current = str(plan_to_json(plan)["plan_hash"])
    if header.version == HEADER_VERSION and header.plan_hash == current:
        _info(f"The plan is the one reviewed on pull request #{number}.")
        return
    why = (
        "the last plan posted there failed, so none was reviewed"
        if header.plan_hash is None
        else f"reviewed {header.plan_hash[:12]}, now {current[:12]}"
    )
    message = (
        f"the plan differs from the one reviewed on pull request #{number} ({why}); nothing was applied. "
        f"The reviewed plan: {comment.url or comment.id}"
    )
    _summary(
        run,
        f"### wp apply refused: the plan changed since review\n\n{message}\n\n{render_markdown(plan)}",
    )
    raise _Stop(
        FailureReason.PLAN_CHANGED,
        message,
        EXIT_STALE,
        "the base branch or the live objects changed after the review: plan again on a pull request",
    )


def _actor(gh: ActionsRun) -> str:
    if gh.repository:
        return f"github-actions:{gh.repository}@{gh.sha or 'unknown'}"
    return actor()


def _drift_mode(run: _Run, store: Store) -> int:
    from reconciler.engine.render import render_markdown

    plan = _plan(run, store, comment_on_failure=False)
    found = bool(plan.drift) or plan.has_changes
    _set_outputs(run, plan, changes=found)
    title = f"### wp drift: project `{plan.project}`"
    if not found:
        if not run.json_out:
            console.print(
                "[green]No drift.[/green] The live objects match the configuration and the last apply."
            )
        _summary(
            run, f"{title}\n\n**No drift.** The live objects match the configuration and the last apply.\n"
        )
        return EXIT_OK
    _show(run, plan)
    lines = [title, ""]
    if plan.drift:
        lines += [f"**{len(plan.drift)} object(s) changed outside wp since the last apply:**", ""]
        lines += [f"- `{c.address}` was {_drift_verb(c)}" for c in plan.drift]
        lines.append("")
    if plan.has_changes:
        s = plan.summary
        lines += [
            f"**`wp apply` would change: {s.add} to add, {s.change} to change, {s.destroy} to destroy.**",
            "",
        ]
    _summary(run, "\n".join(lines) + "\n" + render_markdown(plan))
    return EXIT_CHANGES


def _drift_verb(change: Change) -> str:
    from reconciler.engine.plan import Action

    return "deleted outside wp" if change.action is Action.DELETE else "changed outside wp"


_MODES = {CiMode.plan: _plan_mode, CiMode.apply: _apply_mode, CiMode.drift: _drift_mode}
