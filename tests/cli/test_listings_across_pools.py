"""`wp work-queue ls` and `wp worker ls` without `--pool` list across pools; `wp worker ls` hides OFFLINE
workers unless `--all`, and shows the runs each has in hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from wp_cli import Wp

from reconciler.store.sql import SqlStore


def test_work_queue_ls_without_pool_lists_every_pools_queues(wp: Wp) -> None:
    assert wp("work-pool", "create", "a").code == 0
    assert wp("work-pool", "create", "b").code == 0
    assert wp("work-queue", "create", "urgent", "--pool", "b").code == 0
    rows = wp("work-queue", "ls", "--json").json()
    assert [(r["work_pool"], r["name"]) for r in rows] == [
        ("a", "default"),
        ("b", "default"),
        ("b", "urgent"),
    ]
    assert "urgent" in wp("work-queue", "ls").stdout


def test_worker_ls_without_pool_hides_offline_workers_unless_all(wp: Wp, live_store: SqlStore) -> None:
    assert wp("work-pool", "create", "a").code == 0
    assert wp("work-pool", "create", "b").code == 0
    now = datetime.now(UTC)
    live_store.heartbeat_worker("a", "fresh", interval=30, now=now)
    live_store.heartbeat_worker("b", "stale", interval=30, now=now - timedelta(hours=1))
    shown = wp("worker", "ls", "--json").json()
    assert [(w["work_pool"], w["name"], w["status"]) for w in shown] == [("a", "fresh", "ONLINE")]
    assert shown[0]["runs_in_hand"] == 0
    everything = wp("worker", "ls", "--all", "--json").json()
    assert [w["name"] for w in everything] == ["fresh", "stale"]
    text = wp("worker", "ls").stdout
    assert "fresh" in text and "stale" not in text and "1 offline worker hidden" in " ".join(text.split())


def test_worker_ls_shows_each_workers_host_and_pid_as_its_heartbeat_reports_them(
    wp: Wp, live_store: SqlStore
) -> None:
    import socket

    assert wp("work-pool", "create", "a").code == 0
    assert wp("worker", "start", "--pool", "a", "--name", "real", "--run-once").code == 0
    live_store.heartbeat_worker("a", "elsewhere", interval=30, now=datetime.now(UTC), host="box-9", pid=77)
    rows = {w["name"]: w for w in wp("worker", "ls", "--all", "--json").json()}
    assert rows["real"]["host"] == socket.gethostname()
    assert isinstance(rows["real"]["pid"], int) and rows["real"]["pid"] > 0
    assert (rows["elsewhere"]["host"], rows["elsewhere"]["pid"]) == ("box-9", 77)
    text = wp("worker", "ls").stdout
    assert "box-9" in text and "77" in text
