"""canonical_json writes the standard library's text byte for byte (sorted keys, no blanks, default=str), though
orjson writes most of it: plan hashes, fingerprints and sealed secrets' digests made by older versions still
match. Any value: floats of every size (orjson spells small ones differently), NaN and infinities (orjson
writes null), integers beyond 64 bits, keys that are not strings, lone surrogates, control characters,
tuples, datetimes."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from reconciler.model import canonical_json

STDLIB = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e-3, max_value=1e-3),
    st.text(max_size=12),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x7F), max_size=6),
    st.sampled_from(["\ud800", "e-5", "0.00001", "null", "\u2028", "\x7f"]),
    st.datetimes(timezones=st.just(UTC)),
    st.dates(),
)
KEYS = st.one_of(st.text(max_size=6), st.sampled_from(["é", "Z", "a", "\U0001f600", "ß", "\ufb01"]))
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(KEYS, inner, max_size=4),
    ),
    max_leaves=16,
)


@settings(max_examples=600, deadline=None)
@given(VALUES)
@example({"x": math.nan, "y": None})
@example({"x": math.inf, "y": [None, -math.inf]})
@example([1e-7, 5e-05, 1.5e-05, 1e-4, 1e16, 1e22, -0.0, 5e-324])
@example({"big": 2**64, "n": None})
@example({"when": datetime(2026, 1, 1, tzinfo=UTC), "d": date(2026, 1, 1), "n": None})
@example({"\ud800": 1})
def test_same_text_as_the_standard_library(value: Any) -> None:
    assert canonical_json(value) == STDLIB.encode(value)


def test_keys_that_are_not_strings_sort_as_the_standard_library_sorts_them() -> None:
    value = {2: "b", 10: "a", 1: None}
    assert canonical_json(value) == STDLIB.encode(value) == '{"1":null,"2":"b","10":"a"}'
