"""Regular expressions of variables schemas (`pattern`, `patternProperties`), evaluated in bounded time.

Owns `BoundedValidator`, the Draft 2020-12 validator every variables schema is checked with. A schema comes
from a config, which comes from a pull request: `pattern: '^(a|aa)+$'` makes Python's backtracking `re`
run for years on a 60-character default. The `regex` library evaluates the same syntax as `re` (so no
pattern that works today changes meaning; a non-backtracking engine such as RE2 would refuse lookarounds
and backreferences that schemas use) and stops a match after PATTERN_SECONDS. A pattern that once ran out
of time is refused at once afterwards, so ten thousand deployments cannot each spend the bound on it.

Must never do I/O.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import jsonschema
import regex
from jsonschema.exceptions import ValidationError

PATTERN_SECONDS = 0.1  # per match; libraries check the clock coarsely, so a refusal may take a few times this
_SLOW: set[str] = set()
_SLOW_MAX = 1024


class PatternTooSlow(Exception):
    pass


def search(pattern: str, text: str) -> bool:
    """Whether `pattern` matches somewhere in `text`; PatternTooSlow past the time bound."""
    if pattern in _SLOW:
        raise PatternTooSlow(pattern)
    try:
        return regex.search(pattern, text, timeout=PATTERN_SECONDS) is not None
    except TimeoutError:
        if len(_SLOW) < _SLOW_MAX:
            _SLOW.add(pattern)
        raise PatternTooSlow(pattern) from None


def _too_slow(pattern: str) -> ValidationError:
    return ValidationError(
        f"pattern {pattern!r} takes longer than {PATTERN_SECONDS} s to match: it backtracks catastrophically "
        "(nested or overlapping repetition such as '(a+)+' or '(a|aa)+'); rewrite it without nesting them"
    )


def _pattern(
    validator: Any, pattern: str, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "string"):
        return
    try:
        if not search(pattern, instance):
            yield ValidationError(f"{instance!r} does not match {pattern!r}")
    except PatternTooSlow:
        yield _too_slow(pattern)
    except regex.error as exc:
        yield ValidationError(f"pattern {pattern!r} is not a valid regular expression: {exc}")


def _matching(patterns: Any, key: str) -> Iterator[str]:
    """The patterns of `patterns` that match `key` (PatternTooSlow, regex.error propagate)."""
    for pattern in patterns if isinstance(patterns, Mapping) else ():
        if search(pattern, key):
            yield pattern


def _pattern_properties(
    validator: Any, patterns: Mapping[str, Any], instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for key, value in instance.items():
        try:
            matched = list(_matching(patterns, key))
        except PatternTooSlow as exc:
            yield _too_slow(str(exc))
            return
        except regex.error as exc:
            yield ValidationError(f"a patternProperties key is not a valid regular expression: {exc}")
            return
        for pattern in matched:
            yield from validator.descend(value, patterns[pattern], path=key, schema_path=pattern)


_ORIGINAL = jsonschema.Draft202012Validator.VALIDATORS


def _additional_properties(
    validator: Any, extra: Any, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object") or "patternProperties" not in schema:
        yield from _ORIGINAL["additionalProperties"](validator, extra, instance, schema)
        return
    # jsonschema's own check would match the patternProperties keys with `re`
    properties = schema.get("properties", {})
    try:
        extras = [
            k for k in instance if k not in properties and not any(_matching(schema["patternProperties"], k))
        ]
    except (PatternTooSlow, regex.error):
        return  # patternProperties, in the same schema, says so
    if validator.is_type(extra, "object"):
        for key in extras:
            yield from validator.descend(instance[key], extra, path=key)
    elif not extra and extras:
        listed = ", ".join(repr(k) for k in sorted(extras))
        yield ValidationError(f"{listed} do not match any of the regexes: patternProperties")


BoundedValidator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    {
        "pattern": _pattern,
        "patternProperties": _pattern_properties,
        "additionalProperties": _additional_properties,
    },
)
