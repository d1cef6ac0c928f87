"""How large a value a job template may build while it renders, checked before it is built.

Owns `weight` (the characters a value prints as, counted up to a cap without printing it) and the bounded
forms of the template operations that can multiply size: `*`, `+`, `~`, `join`, `string`, `tojson`.
`(['a' * 1000000] * 1000000) | join` is one million references to one string, cheap to build and a
terabyte to print: checking only the output after rendering is too late, so each operation is checked on
its inputs. A refusal is a jinja2 SecurityError, which rendering reports as a template error.

Must never do I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from jinja2.exceptions import SecurityError

MAX_TEXT = 1_000_000  # characters one value built by a template may reach
_MAX_NESTING = 64


def weight(value: Any, cap: int = MAX_TEXT, depth: int = 0) -> int:
    """About the characters `value` prints as; any answer above `cap` means "too large" (counting stops)."""
    if isinstance(value, str):
        return len(value)
    if depth > _MAX_NESTING:
        return cap + 1
    if isinstance(value, Mapping):
        total = 2
        for k, v in value.items():
            total += weight(k, cap, depth + 1) + weight(v, cap, depth + 1) + 4
            if total > cap:
                return total
        return total
    if isinstance(value, list | tuple):
        total = 2
        for item in value:
            total += weight(item, cap, depth + 1) + 2
            if total > cap:
                return total
        return total
    return 24  # a number, a boolean, null: at most this many characters


def _refuse(what: str) -> SecurityError:
    return SecurityError(f"{what} would exceed {MAX_TEXT:,} characters")


def check_repeat(left: Any, right: Any) -> None:
    """`seq * n`, the sequence's weight counted (a list of one huge string repeated is huge)."""
    for seq, n in ((left, right), (right, left)):
        if not (isinstance(seq, str | list | tuple) and isinstance(n, int) and n > 0):
            continue
        if len(seq) * n > MAX_TEXT or weight(seq, MAX_TEXT // n + 1) * n > MAX_TEXT:
            raise _refuse("a repetition in the template")


def check_add(left: Any, right: Any) -> None:
    sequences = isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple)
    if sequences and weight(left) + weight(right) > MAX_TEXT:
        raise _refuse("a '+' in the template")


def concat(parts: Iterable[Callable[[], Any]]) -> str:
    """`a ~ b ~ c`: the text of each part (a function building it) joined; refused as soon as too long."""
    texts: list[str] = []
    total = 0
    for build in parts:
        part = build()
        text = part if isinstance(part, str) else bounded_string(part)
        total += len(text)
        if total > MAX_TEXT:
            raise _refuse("a '~' in the template")
        texts.append(text)
    return "".join(texts)


def bounded_join(original: Any) -> Any:
    """jinja2's `join` filter, refused when the joined text would be too long."""

    def join(eval_ctx: Any, value: Any, d: str = "", attribute: Any = None) -> Any:
        items = list(value)
        size = weight(items) + len(str(d)) * max(len(items) - 1, 0)
        if size > MAX_TEXT:
            raise _refuse("a join in the template")
        return original(eval_ctx, items, d, attribute)

    join.jinja_pass_arg = original.jinja_pass_arg  # type: ignore[attr-defined]
    return join


def bounded_string(value: Any) -> str:
    if weight(value) > MAX_TEXT:
        raise _refuse("the text of a value in the template")
    return str(value)


def bounded_tojson(original: Any) -> Any:
    def tojson(eval_ctx: Any, value: Any, indent: int | None = None) -> Any:
        if weight(value) * (1 + (indent or 0)) > MAX_TEXT:
            raise _refuse("tojson in the template")
        return original(eval_ctx, value, indent)

    tojson.jinja_pass_arg = original.jinja_pass_arg  # type: ignore[attr-defined]
    return tojson
