"""What `wp work-pool create` and `wp work-queue create` tell a new user."""

from __future__ import annotations

from wp_cli import Wp


def test_work_pool_create_says_how_to_start_a_worker(wp: Wp) -> None:
    out = " ".join(wp("work-pool", "create", "etl").stdout.split())
    assert "Created work pool etl (process)." in out
    assert "wp worker start --pool etl" in out


def test_a_taken_priority_says_which_queues_moved(wp: Wp) -> None:
    assert wp("work-pool", "create", "p").code == 0
    out = " ".join(wp("work-queue", "create", "urgent", "--pool", "p", "--priority", "1").stdout.split())
    assert "Created work queue p/urgent with priority 1." in out
    assert "Moved default from priority 1 to 2." in out
    quiet = " ".join(wp("work-queue", "create", "low", "--pool", "p").stdout.split())
    assert "Moved" not in quiet
