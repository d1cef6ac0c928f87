"""`wp init | validate | plan | apply | destroy | history | force-unlock` as a user runs them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from wp_cli import ProjectWriter, Wp

from reconciler.model import Key, Kind
from reconciler.store.sql import SqlStore


def _edit(project: Path, old: str, new: str) -> None:
    path = project / "wp.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def _pool_names(store: SqlStore) -> set[str]:
    return {p.name for p in store.list_work_pools()}


# ------------------------------------------------------------------------------------------- plan formats


def test_plan_text_lists_each_change_and_the_summary(wp: Wp, demo: Path) -> None:
    result = wp("plan", demo)
    assert result.code == 0
    assert '+ work_pool "p"' in result.stdout
    assert "# deployment.say-hello/d will be created" in result.stdout
    assert "Plan: 3 to add, 0 to change, 0 to destroy." in result.stdout
    assert "\x1b[" not in result.stdout  # no colour when stdout is not a terminal


def test_plan_json_is_only_json_with_resource_changes(wp: Wp, demo: Path) -> None:
    plan = wp("plan", demo, "--format", "json").json()
    changes = {c["address"]: c["actions"] for c in plan["resource_changes"]}
    assert changes == {
        "work_pool.p": ["create"],
        "work_queue.p/urgent": ["create"],
        "deployment.say-hello/d": ["create"],
    }
    assert plan["format_version"]


def test_plan_markdown_is_a_pr_comment(wp: Wp, demo: Path) -> None:
    out = wp("plan", demo, "--format", "markdown").stdout
    assert out.startswith("### wp plan")
    assert "| `+` | `work_pool.p` | create |" in out


def test_detailed_exitcode_is_2_with_changes_and_0_without(wp: Wp, demo: Path) -> None:
    assert wp("plan", demo, "--detailed-exitcode").code == 2
    assert wp("apply", demo, "--auto-approve").code == 0
    again = wp("plan", demo, "--detailed-exitcode")
    assert again.code == 0
    assert "No changes" in again.stdout


# -------------------------------------------------------------------------------------------- saved plans


def test_apply_plan_file_applies_exactly_that_plan(
    wp: Wp, demo: Path, tmp_path: Path, live_store: SqlStore
) -> None:
    plan_file = tmp_path / "plan.json"
    assert wp("plan", demo, "--out", plan_file).code == 0
    _edit(demo, "concurrency_limit: 4", "concurrency_limit: 7")  # after the review: not in the saved plan
    applied = wp("apply", plan_file)
    assert applied.code == 0, applied.stderr
    assert "3 added" in applied.stdout
    assert live_store.get_work_pool("p").concurrency_limit == 4
    assert "concurrency_limit = 4 -> 7" in wp("plan", demo).stdout


def test_plan_file_made_stale_out_of_band_is_refused(
    wp: Wp, demo: Path, tmp_path: Path, live_store: SqlStore
) -> None:
    assert wp("apply", demo, "--auto-approve").code == 0
    _edit(demo, "concurrency_limit: 4", "concurrency_limit: 5")
    plan_file = tmp_path / "plan.json"
    assert wp("plan", demo, "--out", plan_file).code == 0
    assert wp("work-pool", "update", "p", "--description", "changed by hand").code == 0
    stale = wp("apply", plan_file)
    assert stale.code == 3
    assert "work_pool.p" in stale.stderr
    pool = live_store.get_work_pool("p")
    assert (pool.concurrency_limit, pool.description) == (4, "changed by hand")


def test_secret_is_masked_in_plans_but_applied_in_clear(
    wp: Wp, project: ProjectWriter, tmp_path: Path, live_store: SqlStore
) -> None:
    config = """\
project: demo
work_pools: [{name: p, type: process}]
deployments:
  - name: d
    entrypoint: flows/hello.py:say_hello
    work_pool: {name: p, job_variables: {env: {API_TOKEN: "${TOKEN}"}}}
"""
    directory = project("secret", config)
    env: dict[str, str | None] = {"TOKEN": "s3cr3t-value"}
    plan_file = tmp_path / "plan.json"
    as_json = wp("plan", directory, "--format", "json", "--out", plan_file, env=env)
    as_text = wp("plan", directory, env=env)
    for output in (as_json.stdout, as_text.stdout, plan_file.read_text()):
        assert "s3cr3t-value" not in output
        assert "(sensitive)" in output
    assert wp("apply", plan_file, env=env).code == 0
    deployment = live_store.get_deployment("say-hello", "d")
    assert deployment.job_variables["env"]["API_TOKEN"] == "s3cr3t-value"


def test_apply_without_auto_approve_refuses_when_nobody_can_answer(
    wp_process: Wp, demo: Path, live_store: SqlStore
) -> None:
    result = wp_process("apply", demo)
    assert result.code == 1
    assert "--auto-approve" in result.stderr
    assert _pool_names(live_store) == set()


# ------------------------------------------------------------------------------------------------ the lock


def test_held_lock_refuses_apply_naming_the_holder_until_force_unlocked(
    wp_process: Wp, wp: Wp, demo: Path, live_store: SqlStore
) -> None:
    lock = live_store.acquire_lock("alice@ci-runner", "apply other-project")
    refused = wp_process("apply", demo, "--auto-approve")
    assert refused.code == 3
    assert "alice@ci-runner" in refused.stderr
    assert lock.id in refused.stderr
    assert _pool_names(live_store) == set()
    unlocked = wp("force-unlock", lock.id)
    assert unlocked.code == 0
    assert "alice@ci-runner" in unlocked.stdout
    assert wp("apply", demo, "--auto-approve").code == 0
    assert _pool_names(live_store) == {"p"}


def test_force_unlock_of_an_unknown_lock_is_a_clear_error(wp: Wp) -> None:
    result = wp("force-unlock", "no-such-lock")
    assert result.code == 1
    assert "no lock with id 'no-such-lock'" in result.stderr


# ------------------------------------------------------------------------------------------------- history


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_history_records_git_commit_branch_and_dirty_flag(wp: Wp, demo: Path) -> None:
    _git(demo, "init", "-q", "-b", "main")
    _git(demo, "-c", "user.name=T", "-c", "user.email=t@example.com", "add", ".")
    _git(demo, "-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "-q", "-m", "pools")
    assert wp("apply", demo, "--auto-approve").code == 0
    _edit(demo, "concurrency_limit: 4", "concurrency_limit: 6")  # uncommitted
    assert wp("apply", demo, "--auto-approve").code == 0
    history = wp("history", "--json").json()
    assert [h["summary"] for h in history] == [
        {"add": 0, "change": 1, "destroy": 0},
        {"add": 3, "change": 0, "destroy": 0},
    ]
    head = _git(demo, "rev-parse", "HEAD")
    assert [(h["git_commit"], h["git_branch"], h["git_dirty"]) for h in history] == [
        (head, "main", True),
        (head, "main", False),
    ]
    assert all(h["project"] == "demo" for h in history)


# ------------------------------------------------------------------------------------------ drift, ignore


def test_change_made_by_hand_shows_as_drift_and_is_changed_back(wp: Wp, demo: Path) -> None:
    assert wp("apply", demo, "--auto-approve").code == 0
    assert wp("work-pool", "set-concurrency-limit", "p", "9").code == 0
    plan = wp("plan", demo, "--detailed-exitcode")
    assert plan.code == 2
    drift, _, actions = plan.stdout.partition("wp will perform the following actions:")
    assert "Objects changed outside wp since the last apply" in drift
    assert "concurrency_limit = 4 -> 9" in drift
    assert "concurrency_limit = 9 -> 4" in actions
    as_json = wp("plan", demo, "--format", "json").json()
    assert [d["address"] for d in as_json["resource_drift"]] == ["work_pool.p"]


def test_objects_deleted_by_hand_show_as_drift_and_are_made_again(wp: Wp, demo: Path) -> None:
    assert wp("apply", demo, "--auto-approve").code == 0
    assert wp("deployment", "delete", "say-hello/d", "--yes").code == 0
    assert wp("work-queue", "delete", "urgent", "--pool", "p", "--yes").code == 0
    plan = wp("plan", demo, "--detailed-exitcode")
    assert plan.code == 2
    drift, _, actions = plan.stdout.partition("wp will perform the following actions:")
    assert "# work_queue.p/urgent was deleted outside wp" in drift
    assert "# deployment.say-hello/d was deleted outside wp" in drift
    assert '- work_queue "p/urgent" {' in drift  # what it was, as last applied
    assert "# work_queue.p/urgent will be created" in actions
    assert "Plan: 2 to add, 0 to change, 0 to destroy." in actions
    found = wp("drift", demo, "--json").json()["drift"]
    assert {(d["address"], d["action_reason"]) for d in found} == {
        ("work_queue.p/urgent", "deleted_outside_wp"),
        ("deployment.say-hello/d", "deleted_outside_wp"),
    }
    assert wp("apply", demo, "--auto-approve").code == 0
    assert wp("plan", demo, "--detailed-exitcode").code == 0
    assert wp("drift", demo, "--detailed-exitcode").code == 0


def test_ignored_field_changed_by_hand_is_not_a_change(wp: Wp, demo: Path, live_store: SqlStore) -> None:
    assert wp("apply", demo, "--auto-approve").code == 0
    assert wp("work-pool", "pause", "p").code == 0
    assert wp("plan", demo, "--detailed-exitcode").code == 0
    assert wp("work-queue", "pause", "urgent", "--pool", "p").code == 0  # not ignored: a change back
    assert wp("plan", demo, "--detailed-exitcode").code == 2
    assert wp("apply", demo, "--auto-approve").code == 0
    assert live_store.get_work_pool("p").paused is True
    assert live_store.get_work_queue("p", "urgent").paused is False


# ------------------------------------------------------------------------------------ prune and ownership


NO_DEPLOYMENT = """\
project: demo
work_pools:
  - {name: p, type: process, concurrency_limit: 4, queues: [{name: urgent, priority: 1}]}
"""


def test_undeclared_deployment_is_kept_unless_prune(wp: Wp, demo: Path, live_store: SqlStore) -> None:
    assert wp("apply", demo, "--auto-approve").code == 0
    (demo / "wp.yaml").write_text(NO_DEPLOYMENT)
    kept = wp("plan", demo, "--detailed-exitcode")
    assert kept.code == 0
    assert "deployment.say-hello/d is not declared; kept because prune is off" in kept.stdout + kept.stderr
    pruned = wp("apply", demo, "--auto-approve", "--prune")
    assert pruned.code == 0
    assert "1 destroyed" in pruned.stdout
    assert live_store.list_deployments(None) == []


def test_destroying_a_protected_pool_fails_the_plan(
    wp: Wp, project: ProjectWriter, live_store: SqlStore
) -> None:
    directory = project(
        "protected", "project: demo\nwork_pools: [{name: vault, type: process, protect: true}]\n"
    )
    assert wp("apply", directory, "--auto-approve").code == 0
    refused = wp("destroy", directory, "--auto-approve")
    assert refused.code == 1
    assert "work_pool.vault has `protect: true`" in refused.stderr
    assert _pool_names(live_store) == {"vault"}


def test_removed_protected_pool_is_not_pruned(wp: Wp, project: ProjectWriter, live_store: SqlStore) -> None:
    # Stricter than Terraform's prevent_destroy: the store remembers protection, so deleting the block is not
    # enough; the config must first say `protect: false` and be applied.
    config = "project: demo\nwork_pools:\n  - {name: keep, type: process}\n  - {name: vault, type: process, protect: true}\n"
    directory = project("protected", config)
    assert wp("apply", directory, "--auto-approve").code == 0
    (directory / "wp.yaml").write_text("project: demo\nwork_pools:\n  - {name: keep, type: process}\n")
    refused = wp("plan", directory, "--prune", "--allow-mass-delete")
    assert refused.code == 1
    assert "work_pool.vault" in refused.stderr
    assert _pool_names(live_store) == {"keep", "vault"}

    unprotect = config.replace("protect: true", "protect: false")
    (directory / "wp.yaml").write_text(unprotect)
    plan = wp("plan", directory, "--detailed-exitcode")
    assert plan.code == 2 and "work_pool.vault will be unprotected (protect: false)" in plan.stdout
    assert wp("apply", directory, "--auto-approve").code == 0
    (directory / "wp.yaml").write_text("project: demo\nwork_pools:\n  - {name: keep, type: process}\n")
    assert wp("apply", directory, "--auto-approve", "--prune", "--allow-mass-delete").code == 0
    assert _pool_names(live_store) == {"keep"}


def test_turning_protection_on_is_a_change_to_apply(wp: Wp, project: ProjectWriter) -> None:
    directory = project("protect-later", "project: demo\nwork_pools:\n  - {name: vault, type: process}\n")
    assert wp("apply", directory, "--auto-approve").code == 0
    (directory / "wp.yaml").write_text(
        "project: demo\nwork_pools:\n  - {name: vault, type: process, protect: true}\n"
    )
    plan = wp("plan", directory, "--detailed-exitcode")
    assert plan.code == 2
    assert "work_pool.vault will be protected (protect: true)" in plan.stdout
    assert "Protection changes: 1." in plan.stdout
    assert wp("apply", directory, "--auto-approve").code == 0
    assert wp("plan", directory, "--detailed-exitcode").code == 0


def test_pool_made_by_hand_is_never_pruned_and_is_adopted_when_declared(
    wp: Wp, demo: Path, live_store: SqlStore
) -> None:
    assert wp("work-pool", "create", "byhand", "--concurrency-limit", "3").code == 0
    assert wp("apply", demo, "--auto-approve", "--prune").code == 0
    assert _pool_names(live_store) == {"p", "byhand"}
    _edit(demo, "deployments:", "  - {name: byhand, type: process, concurrency_limit: 2}\ndeployments:")
    adopt = wp("plan", demo)
    assert "work_pool.byhand" in adopt.stdout
    assert "concurrency_limit = 3 -> 2" in adopt.stdout
    assert wp("apply", demo, "--auto-approve").code == 0
    owner = live_store.snapshot().objects[Key(Kind.WORK_POOL, "byhand")].owner
    assert owner == "demo"
    assert wp("plan", demo, "--detailed-exitcode").code == 0


def test_destroy_deletes_only_this_projects_objects(
    wp: Wp, demo: Path, project: ProjectWriter, live_store: SqlStore
) -> None:
    other = project("other", "project: other\nwork_pools: [{name: theirs, type: process}]\n")
    assert wp("apply", other, "--auto-approve").code == 0
    assert wp("work-pool", "create", "byhand").code == 0
    assert wp("apply", demo, "--auto-approve").code == 0
    destroyed = wp("destroy", demo, "--auto-approve")
    assert destroyed.code == 0, destroyed.stderr
    assert _pool_names(live_store) == {"theirs", "byhand"}
    assert live_store.list_deployments(None) == []


# ------------------------------------------------------------------------------------ validate, init, misc


def test_validate_a_good_project(wp: Wp, demo: Path) -> None:
    result = wp("validate", demo)
    assert result.code == 0
    assert "The configuration is valid" in result.stdout
    assert result.stderr == ""


def test_plan_in_a_directory_without_wp_yaml_says_so(wp: Wp, tmp_path: Path) -> None:
    result = wp("plan", tmp_path)
    assert result.code == 1
    assert "wp.yaml not found" in result.stderr
    assert "wp init" in result.stderr


def test_init_then_plan_works(wp: Wp, tmp_path: Path) -> None:
    directory = tmp_path / "starter"
    assert wp("init", directory).code == 0
    assert (directory / "wp.yaml").is_file()
    plan = wp("plan", directory, "--detailed-exitcode")
    assert plan.code == 2
    assert "to add" in plan.stdout
    assert wp("validate", directory).code == 0


@pytest.mark.parametrize("content", ["project: demo\n", "[1, 2]", '{"format_version": "1"}'])
def test_apply_of_a_file_that_is_not_a_plan_says_so(wp: Wp, tmp_path: Path, content: str) -> None:
    not_a_plan = tmp_path / "plan.json"
    not_a_plan.write_text(content)
    result = wp("apply", not_a_plan)
    assert result.code == 1
    assert f"{not_a_plan} is not a wp plan file" in result.stderr
    assert "wp plan --out FILE" in result.stderr
