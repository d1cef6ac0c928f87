"""The event reader gives exactly what the node reader gives: values, value and key positions, diagnostics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.config.load import load_project
from reconciler.config.reader import FileReader
from reconciler.config.sources import Positions, Written
from reconciler.config.yaml_values import EventBuilder, Loader, NeedsNodes

DOCUMENT = """\
project: demo
prune: yes
work_pools:
  - name: "pool-1"
    type: process
    concurrency_limit: 0012
    queues:
      - {name: critical, priority: 1}
      - name: low
        description: ~
deployments:
  - name: d
    entrypoint: flows/f.py:run
    version: 1.0
    parameters: {when: 2024-01-02, list: [1, 2.5, true, null, 'x'], !!str 7: seven}
    schedules:
      - cron: "0 * * * *"
        anchor_date: 2024-01-01T00:00:00Z
"""


def _by_nodes(text: str, root: Path) -> tuple[object, Positions]:
    positions = Positions()
    positions.values[()] = Written.at("wp.yaml", 1, 1, ())
    reader = FileReader(root)
    node = yaml.compose(text, Loader=Loader)
    value = reader.plain(node, "wp.yaml", root / "wp.yaml", (), positions, frozenset())
    return value, positions


def test_events_give_the_values_and_positions_nodes_give(tmp_path: Path) -> None:
    expected, expected_positions = _by_nodes(DOCUMENT, tmp_path)
    positions = Positions()
    positions.values[()] = Written.at("wp.yaml", 1, 1, ())
    value = EventBuilder(DOCUMENT, "wp.yaml", positions, lambda target, at: None).build()
    assert value == expected
    assert positions.values == expected_positions.values
    assert positions.keys == expected_positions.keys


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\na: 2\n",  # duplicate key: the node reader reports it
        "? [a, b]\n: 1\n",  # complex key
        "a: *x\n",  # undefined alias
        "a: 1\n---\nb: 2\n",  # two documents
        "a: [1\n",  # malformed
    ],
)
def test_what_only_nodes_handle_is_left_to_them(text: str) -> None:
    with pytest.raises(NeedsNodes):
        EventBuilder(text, "wp.yaml", Positions(), lambda target, at: None).build()


def test_duplicate_keys_are_still_reported_at_their_line(tmp_path: Path) -> None:
    (tmp_path / "wp.yaml").write_text("project: a\nproject: b\n")
    loaded = load_project(tmp_path, {})
    assert [(d.summary, d.line) for d in loaded.diagnostics] == [("duplicate key 'project'", 2)]


def test_file_tags_are_read_through_events(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "f.py").write_text("def run(n=0):\n    pass\n")
    (tmp_path / "params.yaml").write_text("n: 3\n")
    (tmp_path / "wp.yaml").write_text(
        "project: a\ndeployments:\n  - name: d\n    entrypoint: flows/f.py:run\n    parameters: !file params.yaml\n"
    )
    loaded = load_project(tmp_path, {})
    assert loaded.desired is not None, [d.format() for d in loaded.diagnostics]
    assert loaded.desired.deployments[0].parameters == {"n": 3}
    assert "params.yaml" in loaded.files


@pytest.mark.parametrize(
    "text",
    [
        # keys and values that look like other types, quoted or not, tagged or not
        "yes: on\nNo: off\n1: 0x1F\n~: null\n'true': 'false'\n.5: .inf\n-1: +2\n",
        'plain: text\nquoted: "0012"\ntagged: !!str 12\nbare: !!int "7"\nempty: ""\nnone:\nslash: a/b\n',
        "date: 2024-01-02\nwhen: 2024-01-02T03:04:05Z\nfloat: 1e3\nneg: -0.5\noct: 0o17\nword: Yes please\n",
        "list: [Y, n, NULL, ~, 'on', x1, _1, '#x', a:b]\n",
    ],
)
def test_scalars_are_typed_alike_by_events_and_nodes(text: str, tmp_path: Path) -> None:
    expected, expected_positions = _by_nodes(text, tmp_path)
    positions = Positions()
    positions.values[()] = Written.at("wp.yaml", 1, 1, ())
    value = EventBuilder(text, "wp.yaml", positions, lambda target, at: None).build()
    assert value == expected
    assert [type(v) for v in value.values()] == [type(v) for v in expected.values()]  # type: ignore[attr-defined]
    assert positions.keys == expected_positions.keys


def _typed_tree(value: Any) -> Any:
    """`value` with each scalar paired with its type, so that 1 and True and 1.0 differ."""
    if isinstance(value, dict):
        return {(type(k), k): _typed_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed_tree(v) for v in value]
    return (type(value), value)


@pytest.mark.parametrize(
    "text",
    [
        "yes: on\nNo: off\n1: 0x1F\n~: null\n'true': 'false'\n.5: .inf\n-1: +2\n",
        'plain: text\nquoted: "0012"\ntagged: !!str 12\nbare: !!int "7"\nempty: ""\nnone:\nslash: a/b\n',
        "date: 2024-01-02\nwhen: 2024-01-02T03:04:05Z\nfloat: 1e3\nneg: -0.5\noct: 0o17\nword: Yes please\n",
        "list: [Y, n, NULL, ~, 'on', x1, _1, '#x', a:b, '', 10, '10', !!str 10, 10]\n",
        # the same texts again and again, plain and quoted, as keys and values: each is read once per text
        "items:\n"
        + "".join(
            f"  - {{n: {i % 3}, q: '{i % 3}', v: no, 'y': 'no', t: {t}, u: '{t}', {t}: plain, 'k{t}': x}}\n"
            for i, t in enumerate(["1.5", "true", "~", "2024-01-02", "0x10", "1e3", "null", "1.5"])
        ),
    ],
)
def test_a_bare_read_types_scalars_as_nodes_do(text: str, tmp_path: Path) -> None:
    """Without positions (a large clean file), every key and value is what the node reader gives, type too."""
    expected, _ = _by_nodes(text, tmp_path)
    value = EventBuilder(text, "wp.yaml", None, lambda target, at: None).build()
    assert _typed_tree(value) == _typed_tree(expected)


def test_a_bare_read_still_leaves_merge_keys_and_duplicates_to_nodes() -> None:
    for text in ("a: 1\n<<: {b: 2}\n", "a: 1\nb: 2\na: 3\n", "n: 1\n'n': 2\n"):
        with pytest.raises(NeedsNodes):
            EventBuilder(text, "wp.yaml", None, lambda target, at: None).build()
