"""Reading a run's logs by prefix, on every store (SQLite, PostgreSQL, HTTP): how `wp flow-run inspect` finds a
Prefect flow's task-run summaries without reading the run's whole output."""

from __future__ import annotations

from datetime import UTC, datetime

from reconciler.model import LogLine
from reconciler.store.sql import SqlStore
from tests.contract.test_store_contract import seed
from tests.contract.test_store_integrity import add_run

NOW = datetime.now(UTC)


def test_a_prefix_reads_only_the_stdout_lines_that_start_with_it(store: SqlStore) -> None:
    seed(store)
    run_id = add_run(store)
    written = [
        ("stdout", "hello"),
        ("stdout", "wp: task run 'a-1': Completed"),
        ("stderr", "wp: task run 'not-a-summary': Failed"),  # a flow's own stderr is not a summary
        ("stdout", "WP: TASK RUN 'upper': Completed"),  # case matters
        ("stdout", "x wp: task run 'inside': Completed"),
        ("stdout", "wp: task run 'b_%': Failed after 3 attempts"),  # LIKE wildcards are plain text
    ]
    store.append_logs([LogLine(run_id=run_id, timestamp=NOW, stream=s, message=m) for s, m in written])

    found = store.read_logs(run_id, prefix="wp: task run ")
    assert [ln.message for ln in found] == [
        "wp: task run 'a-1': Completed",
        "wp: task run 'b_%': Failed after 3 attempts",
    ]
    assert [ln.seq for ln in found] == [1, 5]  # the lines keep their place in the run's output
    assert [ln.message for ln in store.read_logs(run_id, prefix="wp: task run 'b_")] == [written[5][1]]
    assert store.read_logs(run_id, prefix="wp: task run ", after_seq=1, limit=1)[0].seq == 5
    assert len(store.read_logs(run_id)) == len(written)  # no prefix: everything, as before
