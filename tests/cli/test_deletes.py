"""`wp work-pool|work-queue|deployment delete` as a user meets them: protected objects refused, a confirmation
on a terminal, `--yes`, and never a deployment or waiting run left pointing at nothing."""

from __future__ import annotations

import os
import pty
import subprocess
import time
from pathlib import Path

from wp_cli import WP_SCRIPT, ProjectWriter, Wp

from reconciler.store.sql import SqlStore


def _protected(demo: Path) -> str:
    """The demo project (pool p, queue urgent, deployment say-hello/d) with its pool protected."""
    text = (demo / "wp.yaml").read_text()
    return text.replace("    concurrency_limit: 4\n", "    concurrency_limit: 4\n    protect: true\n")


def _on_a_terminal(home: Path, args: list[str], answer: str) -> tuple[int, str]:
    """`wp ARGS` with stdin and stdout on a pseudo-terminal; types `answer` at the prompt."""
    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WP_")} | {"WP_HOME": str(home)}
    proc = subprocess.Popen(
        [str(WP_SCRIPT), *args], stdin=follower, stdout=follower, stderr=follower, env=env, close_fds=True
    )
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 60
    answered = False
    while time.monotonic() < deadline:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
        if not answered and b"[y/N]" in seen:
            os.write(leader, answer.encode() + b"\n")
            answered = True
    code = proc.wait(timeout=60)
    os.close(leader)
    return code, seen.decode(errors="replace")


def test_a_protected_pool_is_refused_naming_the_project_and_how_to_unprotect(
    wp: Wp, project: ProjectWriter, demo: Path, live_store: SqlStore
) -> None:
    assert wp("apply", project("vault", _protected(demo)), "--auto-approve").code == 0
    result = wp("work-pool", "delete", "p", "--yes", "--cascade")
    assert result.code == 1
    assert "work_pool.p is protected" in result.stderr and "'demo'" in result.stderr
    assert "protect: false" in result.stderr
    assert [p.name for p in live_store.list_work_pools()] == ["p"]


def test_a_pool_in_use_is_refused_naming_its_deployments_unless_cascade(
    wp: Wp, demo: Path, live_store: SqlStore
) -> None:
    assert wp("apply", demo, "--auto-approve").code == 0
    refused = wp("work-pool", "delete", "p", "--yes")
    assert refused.code == 1
    assert "used by 1 deployment: say-hello/d" in refused.stderr
    assert "wp work-pool delete p --cascade" in refused.stderr
    assert [d.name for d in live_store.list_deployments()] == ["d"]
    wp("deployment", "run", "say-hello/d", "--start-in", "3600")
    cascaded = wp("work-pool", "delete", "p", "--yes", "--cascade", "--json")
    assert cascaded.code == 0, cascaded.stderr
    assert cascaded.json() == {
        "deleted": ["work_pool.p", "work_queue.p/urgent", "work_queue.p/default", "deployment.say-hello/d"],
        "waiting_runs_deleted": 1,
    }
    assert live_store.list_work_pools() == [] and live_store.list_deployments() == []
    assert live_store.list_flow_runs() == []


def test_cascade_says_what_it_deleted(wp: Wp, demo: Path) -> None:
    assert wp("apply", demo, "--auto-approve").code == 0
    result = wp("work-queue", "delete", "urgent", "--pool", "p", "--yes", "--cascade")
    assert result.code == 0, result.stderr
    assert "Deleted work queue p/urgent and 1 deployment (say-hello/d)." in result.stdout


def test_a_queue_in_use_is_refused_naming_its_deployments(wp: Wp, demo: Path) -> None:
    assert wp("apply", demo, "--auto-approve").code == 0
    refused = wp("work-queue", "delete", "urgent", "--pool", "p", "--yes")
    assert refused.code == 1
    assert "work_queue.p/urgent is used by 1 deployment: say-hello/d" in refused.stderr


def test_without_a_terminal_a_delete_needs_yes(wp: Wp, live_store: SqlStore) -> None:
    assert wp("work-pool", "create", "scratch").code == 0
    refused = wp("work-pool", "delete", "scratch")
    assert refused.code == 1 and "pass --yes" in refused.stderr
    assert [p.name for p in live_store.list_work_pools()] == ["scratch"]
    assert wp("work-pool", "delete", "scratch", "--yes").code == 0
    assert live_store.list_work_pools() == []


def test_on_a_terminal_a_delete_asks_first(wp: Wp, home: Path, live_store: SqlStore) -> None:
    assert wp("work-pool", "create", "scratch").code == 0
    code, screen = _on_a_terminal(home, ["work-pool", "delete", "scratch"], "n")
    assert code == 1, screen
    assert "Delete work pool scratch and its queue default? [y/N]" in screen
    assert "Nothing deleted." in screen
    assert [p.name for p in live_store.list_work_pools()] == ["scratch"]
    code, screen = _on_a_terminal(home, ["work-pool", "delete", "scratch"], "y")
    assert code == 0, screen
    assert live_store.list_work_pools() == []


def test_a_protected_deployment_is_refused_and_an_unprotected_one_goes(
    wp: Wp, project: ProjectWriter, demo: Path, live_store: SqlStore
) -> None:
    guarded = (demo / "wp.yaml").read_text() + "    protect: true\n"
    assert wp("apply", project("guarded", guarded), "--auto-approve").code == 0
    refused = wp("deployment", "delete", "say-hello/d", "--yes")
    assert refused.code == 1 and "deployment.say-hello/d is protected" in refused.stderr
    assert wp("apply", demo, "--auto-approve").code == 0  # the same project, now unprotected
    deleted = wp("deployment", "delete", "say-hello/d", "--yes", "--json")
    assert deleted.code == 0, deleted.stderr
    assert deleted.json()["deleted"] == ["deployment.say-hello/d"]
    assert live_store.list_deployments() == []
