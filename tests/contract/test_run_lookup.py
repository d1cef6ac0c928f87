"""Finding runs on every store: newest first, by name or id prefix."""

from __future__ import annotations

from test_store_contract import seed
from test_store_integrity import add_run

from reconciler.store.sql import SqlStore


def test_runs_are_found_by_name_or_id_prefix_and_listed_newest_first(store: SqlStore) -> None:
    seed(store)
    first, second = add_run(store), add_run(store)
    [run] = store.list_flow_runs(match=first[:8])
    assert run.id == first
    assert [r.id for r in store.list_flow_runs(match=run.name)] == [first]
    assert store.list_flow_runs(match="%") == []  # no wildcard: a prefix is literal
    newest = store.list_flow_runs(newest_first=True)
    oldest = store.list_flow_runs()
    assert [r.id for r in newest] == [r.id for r in reversed(oldest)]
    assert {r.id for r in newest} == {first, second}


def test_a_runs_infrastructure_id_is_stored(store: SqlStore) -> None:
    seed(store)
    run_id = add_run(store)
    updated = store.set_run_infrastructure(run_id, "4242")
    assert updated.infrastructure_id == "4242"
    assert store.get_flow_run(run_id).infrastructure_id == "4242"
