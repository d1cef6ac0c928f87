"""Property test: whatever bytes a pull request puts in wp.yaml or prefect.yaml, loading the project ends in a
clean result or in diagnostics with a position; never an exception, never more than SECONDS, never more than
MEGABYTES of extra peak memory. Inputs are byte mutations of the hostile corpus and the examples, and YAML
texts built from the constructs that broke wp before (anchors, aliases, merge keys, tags, deep nesting).

WP_FUZZ_EXAMPLES raises the number of examples for a longer local run.
"""

from __future__ import annotations

import os
import resource
import tempfile
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.config.load import load_project
from reconciler.diagnostics import Severity

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
SEEDS = sorted(
    [p for p in (HERE / "hostile").glob("*/*.yaml")]
    + [p for p in (ROOT / "examples").glob("*/wp.yaml")]
    + [p for p in (ROOT / "examples").glob("*/prefect.yaml")]
)
EXAMPLES = int(os.environ.get("WP_FUZZ_EXAMPLES", "150"))
SECONDS = 5.0
MEGABYTES = 256
FLOW = "from prefect import flow\n\n\n@flow\ndef run() -> None:\n    pass\n"
TOKENS = [
    b"&a ", b"*a", b"&b ", b"*b", b"<<: *a\n", b"[", b"]", b"{", b"}", b": ", b"- ", b"\n  ", b"!file ",
    b"!weird ", b"!!binary ", b"'", b'"', b"\x00", b"\xff\xfe", b"\xe9", b"\t", b"{{ x }}", b"${X}", b"9" * 40,
    b"1e308", b".inf", b"---\n", b"...\n", b"? ", b"%YAML 1.1\n", b"#", b"|\n", b">-\n", b"../", b"/etc/passwd",
]  # fmt: skip


def _mutate(data: bytes, edits: list[tuple[int, int, int, int]]) -> bytes:
    out = bytearray(data)
    for kind, where, size, token in edits:
        at = where % (len(out) + 1)
        if kind == 0:
            out[at:at] = TOKENS[token % len(TOKENS)]
        elif kind == 1:
            del out[at : at + size % 16]
        elif kind == 2:
            out[at : at + 1] = bytes([size % 256])
        else:
            piece = bytes(out[at : at + size % 64])
            out[at:at] = piece * (1 + token % 8)
    return bytes(out)


edits = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 1 << 20), st.integers(0, 255), st.integers(0, 255)),
    min_size=1,
    max_size=8,
)
mutated = st.builds(lambda seed, e: (seed.name, _mutate(seed.read_bytes(), e)), st.sampled_from(SEEDS), edits)
built = st.builds(
    lambda parts: ("wp.yaml", b"project: x\n" + b"".join(parts)),
    st.lists(
        st.sampled_from([*TOKENS, b"work_pools: ", b"name: p", b"deployments: ", b"x", b"\n"]), max_size=60
    ),
)


def _aliases(levels: int, width: int, self_reference: bool) -> tuple[str, bytes]:
    """Anchored lists of aliases of the level below (a "billion laughs" when wide and deep enough)."""
    lines = ["project: x", "l0: &l0 [" + ", ".join(["v"] * width) + "]"]
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]" for i in range(1, levels)]
    lines.append(f"work_pools: &top [*l{levels - 1}" + (", *top]" if self_reference else "]"))
    return "wp.yaml", "\n".join(lines).encode() + b"\n"


def _nested(depth: int, opener: str) -> tuple[str, bytes]:
    closer = "]" if opener == "[" else "}"
    return "wp.yaml", f"project: x\nwork_pools: {opener * depth}{closer * depth}\n".encode()


aliased = st.builds(_aliases, st.integers(1, 12), st.integers(1, 12), st.booleans())
nested = st.builds(_nested, st.integers(1, 3000), st.sampled_from(["[", "{a: "]))


@settings(
    max_examples=EXAMPLES,
    deadline=None,  # timed below: a slow first import is not the config's fault
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)
@given(st.one_of(mutated, built, aliased, nested))
def test_any_bytes_give_a_diagnostic_with_a_position_or_a_clean_result(case: tuple[str, bytes]) -> None:
    name, data = case
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with tempfile.TemporaryDirectory(prefix="wp-fuzz-") as tmp:
        root = Path(tmp)
        (root / "flows").mkdir()
        (root / "flows" / "job.py").write_text(FLOW)
        if name != "wp.yaml":
            (root / "wp.yaml").write_text("project: x\n")
        (root / name).write_bytes(data)
        started = time.monotonic()
        result = load_project(root, {})
        elapsed = time.monotonic() - started
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert elapsed < SECONDS, f"{elapsed:.1f} s"
    assert grown < MEGABYTES, f"peak memory grew {grown:.0f} MB"
    errors = [d for d in result.diagnostics if d.severity is Severity.ERROR]
    if errors:
        assert any(d.file and d.line for d in errors), [d.format() for d in errors]
