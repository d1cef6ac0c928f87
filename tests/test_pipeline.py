"""load_and_check: the config's own checks plus those against the live state, placed in the files."""

from __future__ import annotations

from pathlib import Path

from reconciler.config.sources import Location
from reconciler.engine.job_templates import default_base_job_template
from reconciler.model import Key, Kind, WorkPool
from reconciler.pipeline import load_and_check
from reconciler.store.base import LiveObject, Snapshot

CONFIG = """project: p
work_pools: [{name: mine, type: process}]
deployments:
  - name: d
    entrypoint: flows/etl.py:etl
    work_pool:
      name: shared
      job_variables: {image: x}
"""


def project(tmp_path: Path) -> Path:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "etl.py").write_text("def etl() -> None:\n    pass\n")
    (tmp_path / "wp.yaml").write_text(CONFIG)
    return tmp_path


def snapshot_with(pool: WorkPool) -> Snapshot:
    key = Key(Kind.WORK_POOL, pool.name)
    return Snapshot({key: LiveObject(key, pool, None, "x")})


def test_a_pool_missing_from_config_and_store_is_reported_at_its_line(tmp_path: Path) -> None:
    loaded = load_and_check(project(tmp_path), {}, Snapshot({}))
    [diag] = loaded.diagnostics
    assert loaded.desired is None
    assert "uses work pool 'shared'" in diag.summary
    assert (diag.file, diag.line, diag.column, diag.field_path) == (
        "wp.yaml",
        7,
        13,
        "deployments[0].work_pool.name",
    )
    assert loaded.sources.locate("deployment.etl/d", ("work_pool",)) == Location("wp.yaml", 7, 13)


def test_a_pool_found_in_the_store_gives_a_clean_load(tmp_path: Path) -> None:
    docker = WorkPool(name="shared", type="docker", base_job_template=default_base_job_template("docker"))
    loaded = load_and_check(project(tmp_path), {}, snapshot_with(docker))
    assert loaded.diagnostics == []
    assert loaded.desired is not None
    assert [d.name for d in loaded.desired.deployments] == ["d"]


def test_a_large_project_read_without_positions_still_places_the_store_checks(tmp_path: Path) -> None:
    """wp.yaml is large enough to be read without positions, and prefect.yaml's warning is already placed:
    the pool missing from the store must still be reported at its line, not at the top of wp.yaml."""
    root = project(tmp_path)
    filler = "".join(
        f"  - name: f{i}\n    entrypoint: flows/etl.py:etl\n    work_pool: {{name: mine}}\n"
        for i in range(2000)
    )
    (root / "wp.yaml").write_text(CONFIG.replace("deployments:\n", "deployments:\n" + filler))
    (root / "prefect.yaml").write_text("name: p\npush: [{a: b}]\n")
    loaded = load_and_check(root, {}, Snapshot({}))
    assert loaded.desired is None
    assert [(d.severity.value, d.location) for d in loaded.diagnostics] == [
        ("warning", "prefect.yaml:2:1"),
        ("error", f"wp.yaml:{7 + 3 * 2000}:13"),
    ]
    assert "uses work pool 'shared'" in loaded.diagnostics[1].summary
