"""The C YAML reader (`_fastyaml`) gives exactly what the Python event reader gives, or declines."""

from __future__ import annotations

import importlib
import math
import os
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.config import load, yaml_values
from reconciler.config.load import LoadedConfig, load_project
from reconciler.config.sources import Positions
from reconciler.config.yaml_values import EventBuilder, NeedsNodes

fastyaml = pytest.importorskip("reconciler.config._fastyaml")

PROPERTY = settings(
    max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
DECLINED = object()


def fast(text: str | bytes) -> Any:
    """The C reader's value, or DECLINED."""
    try:
        return fastyaml.values(text, yaml_values._STARTS, yaml_values._fast_typed, yaml_values._fast_key)
    except fastyaml.Declined:
        return DECLINED


def pure(text: str) -> Any:
    """The Python event reader's value (bare mode), or the exception it raises."""
    saved = yaml_values._FAST
    yaml_values._FAST = None
    try:
        return EventBuilder(text, "wp.yaml", None, lambda target, at: ("included", target)).build()
    except Exception as exc:  # compared with what the C reader does
        return exc
    finally:
        yaml_values._FAST = saved


def same(a: Any, b: Any) -> bool:
    """Equal, of the same types all the way down (1, 1.0 and True differ), key order included; NaN is NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return [(type(k), k) for k in a] == [(type(k), k) for k in b] and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return bool(a == b)


def agrees(text: str) -> bool:
    """Asserts the C reader gives the Python reader's value unless it declines; whether it declined."""
    got, expected = fast(text), pure(text)
    if got is DECLINED:
        return True
    assert not isinstance(expected, BaseException), (text, expected)
    assert same(got, expected), (text, got, expected)
    return False


def words(text: str) -> list[str]:
    return text.split()


# Texts that look like other types, or are awkward to write, as keys and values.
TRICKY = [
    *words("~ null Null NULL true True FALSE yes No on Off y n Y 0 1 -1 +1 00 012 0o17 0x1F 0b101 1_000 1.5"),
    *words("-1.5e3 .5 1. 6.8e+5 .inf -.Inf .NaN 1:30 190:20:30 2024-01-02 2024-01-02T03:04:05Z << = - #x"),
    *words("' \" \\ [x] {x} !x !!str &x *x %x @x `x | > ? , é ключ 日本 😀 flows/f.py:run"),
    *words("name n type timezone nightly-1"),
    *["", " ", "- x", ": x", "x #y", "a: b", "? x", "\u2028", "\x00", "\t", " x", "x ", "\ufeff", "\x85"],
    *["a\nb", "2024-1-2 3:04:05.5 +02:00", "0 2 * * *", "x" * 70],
]
SCALARS = st.one_of(
    st.text(max_size=12),
    st.sampled_from(TRICKY),
    st.integers(),
    st.floats(),
    st.booleans(),
    st.none(),
)
STR_KEYS = st.one_of(st.text(max_size=10), st.sampled_from(TRICKY))
DOCUMENTS = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(STR_KEYS, inner, max_size=4)),
    max_leaves=30,
)


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump(value: Any, flow: bool | None, unicode: bool) -> str:
    return yaml.dump(
        value, Dumper=_NoAliases, default_flow_style=flow, allow_unicode=unicode, sort_keys=False
    )


@PROPERTY
@given(DOCUMENTS, st.sampled_from([False, True, None]), st.booleans())
def test_dumped_documents_are_read_in_c_exactly(value: Any, flow: bool | None, unicode: bool) -> None:
    text = dump(value, flow, unicode)
    assert not agrees(text), f"declined {text!r}"


@PROPERTY
@given(st.dictionaries(st.one_of(st.integers(), st.booleans(), st.none(), st.floats(), STR_KEYS), SCALARS))
def test_documents_with_typed_keys_are_read_exactly_or_declined(value: dict[Any, Any]) -> None:
    text = dump(value, None, True)
    declined = agrees(text)
    if all(isinstance(key, str) for key in value):
        assert not declined, text


# Plain tokens for hand-written texts: each is one plain scalar in block and flow context alike.
PLAIN_VALUES = [
    *words(
        "0 1 -1 +7 012 0o17 0x1F 1_000 1.5 -2e3 .inf -.inf .nan 1:30 ~ null NULL true False yes no on OFF"
    ),
    *words("y n 2024-01-02 2024-01-02T03:04:05Z << = name nightly type -x +x .x flows/f.py:run é ключ x-y"),
    *["0 a", "a b", "'q'", '"dq"', "'it''s'", '"tab\\tnul\\0"', "''"],
]
SAFE_KEYS = [*words("name n no_ type timezone yes-ish on_call tags x é"), "'1'", '"true"', "''"]
TYPED_KEYS = ["1", "0x1", "true", "no", "null", "~", "1.5", "2024-01-02", "<<"]


def plain_documents(keys: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    return st.recursive(
        st.sampled_from(PLAIN_VALUES),
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(keys, inner, min_size=1, max_size=4)
        ),
        max_leaves=20,
    )


def block(value: Any, indent: int = 0) -> Iterator[str]:
    pad = " " * indent
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, list | dict) and item:
                yield f"{pad}{key}:"
                yield from block(item, indent + 2)
            else:
                yield f"{pad}{key}: {flow(item)}"
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, list | dict) and item:
                yield f"{pad}-"
                yield from block(item, indent + 2)
            else:
                yield f"{pad}- {flow(item)}"
    else:
        yield f"{pad}{value}"


def flow(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {flow(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(flow(item) for item in value) + "]"
    return str(value)


def written(value: Any, style: str) -> str:
    if style == "flow" or not isinstance(value, list | dict) or not value:
        return flow(value) + "\n"
    return "\n".join(block(value)) + "\n"


@PROPERTY
@given(plain_documents(st.sampled_from(SAFE_KEYS)), st.sampled_from(["block", "flow"]))
def test_hand_written_plain_documents_are_read_in_c_exactly(value: Any, style: str) -> None:
    text = written(value, style)
    assert not agrees(text), f"declined {text!r}"


@PROPERTY
@given(plain_documents(st.sampled_from(SAFE_KEYS + TYPED_KEYS)), st.sampled_from(["block", "flow"]))
def test_hand_written_documents_with_typed_keys_are_read_exactly_or_declined(value: Any, style: str) -> None:
    agrees(written(value, style))


@PROPERTY
@given(st.text(alphabet=st.sampled_from(list("ab1 :-[]{},'\"#&*!|>?~.\n\t\\é")), max_size=40))
def test_any_text_is_read_exactly_or_declined(text: str) -> None:
    got, expected = fast(text), pure(text)
    if isinstance(expected, BaseException):
        assert got is DECLINED, (text, got, expected)
    else:
        agrees(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "# only a comment\n",
        "---\n",
        "--- x\n...\n",
        "\ufeffa: 1\n",
        "%YAML 1.1\n---\na: 1\n",
        "? a\n: 1\n",
        "a: |\n  x\n  y\nb: >-\n  folded\n  text\n",
        'a: "nul \\0 inside"\n',
        "'': empty quoted key\n\"1\": quoted int key\n",
        "a: [1, 0x1F, 1_000, 190:20:30, 12345678901234567890123, .NaN, 2024-01-02 03:04:05]\n",
        "x" * 200 + ": " + "1" * 100 + "\n",
        "[" * 99 + "]" * 99,
    ],
)
def test_edge_texts_are_read_in_c_exactly(text: str) -> None:
    assert not agrees(text)


def test_utf8_bytes_are_read_as_their_text() -> None:
    assert fast("ключ: [значение, 1]\n".encode()) == {"ключ": ["значение", 1]}


DECLINES = {
    "anchor": "a: &x 1\n",
    "anchored mapping": "a: &x {b: 1}\n",
    "anchored sequence": "a: &x [1]\n",
    "alias": "a: &x 1\nb: *x\n",
    "undefined alias": "a: *x\n",
    "scalar tag": "a: !!str 1\n",
    "custom tag": "a: !custom x\n",
    "non-specific tag": "a: ! 1\n",
    "collection tag": "a: !!map {b: 1}\n",
    "sequence tag": "a: !!seq [1]\n",
    "file tag": "a: !file other.yaml\n",
    "tagged key": "!!str 1: a\n",
    "merge key": "base: {x: 1}\nm:\n  <<: {y: 2}\n",
    "duplicate key": "a: 1\na: 2\n",
    "duplicate quoted key": "a: 1\n'a': 2\n",
    "int key": "1: a\n",
    "bool key": "true: a\n",
    "null key": "null: a\n",
    "tilde key": "~: a\n",
    "empty key": "{: a}\n",
    "sequence key": "? [a, b]\n: 1\n",
    "mapping key": "? {a: 1}\n: 1\n",
    "two documents": "a: 1\n---\nb: 2\n",
    "two bare documents": "--- a\n--- b\n",
    "malformed": "a: [1\n",
    "bad indentation": "a: b: c\n",
    "control character": "a: \x01\n",
    "unclosed quote": "a: 'x\n",
    "deep nesting": "[" * 101 + "]" * 101,
    "very deep nesting": "[" * 100_000,
}


@pytest.mark.parametrize("text", list(DECLINES.values()), ids=list(DECLINES))
def test_what_c_cannot_read_exactly_is_declined(text: str) -> None:
    with pytest.raises(fastyaml.Declined):
        fastyaml.values(text, yaml_values._STARTS, yaml_values._fast_typed, yaml_values._fast_key)


def test_lone_surrogates_are_declined() -> None:
    assert fast("a: \ud800\n") is DECLINED
    assert isinstance(pure("a: \ud800\n"), UnicodeEncodeError)


def test_callback_errors_are_declined() -> None:
    def typed(tag: str | None, text: str, plain: bool) -> Any:
        raise ValueError(text)

    with pytest.raises(fastyaml.Declined):
        fastyaml.values("a: 1\n", yaml_values._STARTS, typed, yaml_values._fast_key)
    with pytest.raises(fastyaml.Declined):
        fastyaml.values("name: x\n", yaml_values._STARTS, yaml_values._fast_typed, typed)


def test_each_text_is_typed_once_per_read() -> None:
    calls: list[str] = []

    def typed(tag: str | None, text: str, plain: bool) -> Any:
        calls.append(text)
        return yaml_values._fast_typed(tag, text, plain)

    text = "".join(f"k{i}: [1, true, ~, 2024-01-02, '1']\n" for i in range(50))
    value = fastyaml.values(text, yaml_values._STARTS, typed, yaml_values._fast_key)
    assert value["k49"] == [1, True, None, "2024-01-02", "1"]
    assert sorted(calls) == ["1", "2024-01-02", "true", "~"]


def test_without_the_shortcut_everything_plain_is_typed() -> None:
    # Every character starting an implicit type: then only quoted text is a string without asking.
    every = "".join(chr(c) for c in range(1, 256))
    calls: list[str] = []

    def typed(tag: str | None, text: str, plain: bool) -> Any:
        calls.append(text)
        return yaml_values._fast_typed(tag, text, plain)

    def key(text: str) -> bool:
        calls.append(text)
        return yaml_values._fast_key(text)

    assert fastyaml.values("é: [abc, 'q']\n", every, typed, key) == {"é": ["abc", "q"]}
    assert calls == ["é", "abc"]


def test_memory_stays_flat_over_many_reads() -> None:
    texts = [
        "".join(f"k{i}: {{name: n{i}, v: [1, x, 2.5, ~, 'q'], on: true}}\n" for i in range(100)),
        *DECLINES.values(),
        "a: 1\nb: [x, {c: 1, c: 2}]\n",
    ]
    for text in texts:
        fast(text)
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for _ in range(200):
            for text in texts:
                fast(text)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert grown < 20_000, grown


@pytest.mark.skipif(os.environ.get("CI") != "true", reason="only CI must build the C reader")
def test_ci_builds_the_c_reader() -> None:
    assert importlib.import_module("reconciler.config._fastyaml") is fastyaml
    assert yaml_values._FAST is fastyaml or os.environ.get("WP_PURE_YAML") == "1"


# --- the public load gives the same result either way ---------------------------------------------------

FLOW = "def say_hello(name: str = 'x') -> None:\n    pass\n"
PROJECT = """\
project: demo
work_pools:
  - name: local
    type: process
    concurrency_limit: 4
    queues:
      - {{name: urgent, priority: 1, concurrency_limit: 2}}
deployments:
  - name: hello
    entrypoint: flows/hello.py:say_hello
    work_pool: {{name: local, work_queue_name: urgent}}
    schedules:
      - {{slug: nightly, cron: "0 2 * * *", timezone: Europe/Berlin}}
    tags: [demo, "1", nightly]
    parameters:
      {params}
"""
PROJECTS = {
    "common": PROJECT.format(params="{name: world, n: 3, enabled: yes, when: 2024-01-02}"),
    "anchor": PROJECT.format(params="{name: &x world}"),
    "alias": PROJECT.format(params="{name: &x world, again: *x}"),
    "tag": PROJECT.format(params="{name: !!str 1}"),
    "file tag": PROJECT.format(params="!file params.yaml"),
    "merge key": PROJECT.format(params="{<<: {name: world}}"),
    "duplicate key": PROJECT.format(params="{name: a, name: b}"),
    "int key": PROJECT.format(params="{1: a}"),
    "two documents": PROJECT.format(params="{name: a}") + "---\nproject: other\n",
    "malformed": PROJECT.format(params="{name: [a}"),
    "deep nesting": PROJECT.format(params="[" * 120 + "]" * 120),
    "typo": PROJECT.format(params="{name: a}").replace("concurrency_limit: 4", "concurency_limit: 4"),
}

CLEAN = {"common", "anchor", "alias", "tag", "file tag", "merge key", "int key"}
READS = {"common": ["read"], "typo": ["read"], "file tag": ["declined", "read"]}
READS.update({name: [] for name in ("anchor", "alias", "merge key")})  # `&` and `<<` go straight to nodes


def _loaded(root: Path, fast_reader: Any, positions: bool) -> LoadedConfig:
    saved = yaml_values._FAST
    yaml_values._FAST = fast_reader
    try:
        return load_project(root, {}, positions=positions)
    finally:
        yaml_values._FAST = saved


def _same_load(a: LoadedConfig, b: LoadedConfig) -> bool:
    def parts(loaded: LoadedConfig) -> tuple[Any, ...]:
        return loaded.desired, loaded.diagnostics, loaded.files, vars(loaded.sources)

    return parts(a) == parts(b)


@pytest.fixture
def spy() -> tuple[SimpleNamespace, list[str]]:
    """The C reader, recording whether each call returned or declined."""
    outcomes: list[str] = []

    def values(*args: Any) -> Any:
        try:
            value = fastyaml.values(*args)
        except fastyaml.Declined:
            outcomes.append("declined")
            raise
        outcomes.append("read")
        return value

    return SimpleNamespace(values=values, Declined=fastyaml.Declined), outcomes


@pytest.mark.parametrize("name", list(PROJECTS))
def test_loading_gives_the_same_either_way(
    name: str, tmp_path: Path, spy: tuple[SimpleNamespace, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # these files are small, which would have them read with positions: read them as large files are
    monkeypatch.setattr(load, "ALWAYS_RECORD_BYTES", 0)
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "hello.py").write_text(FLOW)
    (tmp_path / "params.yaml").write_text("name: from-file\n")
    (tmp_path / "wp.yaml").write_text(PROJECTS[name])
    reader, outcomes = spy
    for positions in (False, True):
        with_c = _loaded(tmp_path, reader, positions)
        assert _same_load(with_c, _loaded(tmp_path, None, positions))
    # Files with `&` or `<<` go straight to the node reader; a clean project is loaded once, without positions.
    assert outcomes == READS.get(name, ["declined"])
    assert (with_c.desired is not None) == (name in CLEAN)


@pytest.mark.parametrize(("setting", "reader"), [("1", "None"), ("0", "_fastyaml"), (None, "_fastyaml")])
def test_wp_pure_yaml_turns_the_c_reader_off(setting: str | None, reader: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "WP_PURE_YAML"}
    if setting is not None:
        env["WP_PURE_YAML"] = setting
    code = (
        "from reconciler.config import yaml_values as y; print(y._FAST and y._FAST.__name__.rsplit('.')[-1])"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == reader


def test_build_reads_through_c_without_positions(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_python(self: EventBuilder) -> Any:
        raise AssertionError("the Python event reader was used")

    monkeypatch.setattr(EventBuilder, "_document", no_python)
    text = dump({"work_pools": [{"name": f"p{i}", "concurrency_limit": i} for i in range(3)]}, None, True)
    assert EventBuilder(text, "wp.yaml", None, lambda target, at: None).build() == {
        "work_pools": [{"name": f"p{i}", "concurrency_limit": i} for i in range(3)]
    }
    with pytest.raises(AssertionError):  # a declined text is read in Python
        EventBuilder("a: &x 1\n", "wp.yaml", None, lambda target, at: None).build()
    with pytest.raises(AssertionError):  # and so is every text whose positions are recorded
        EventBuilder(text, "wp.yaml", Positions(), lambda target, at: None).build()


def test_declined_texts_still_need_nodes_where_python_says_so() -> None:
    for text in ("a: 1\na: 2\n", "a: *x\n", "a: 1\n---\nb: 2\n", "a: [1\n"):
        with pytest.raises(NeedsNodes):
            EventBuilder(text, "wp.yaml", None, lambda target, at: None).build()
