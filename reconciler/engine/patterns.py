"""Regular expressions of variables schemas (`pattern`, `patternProperties`, and the keys that
`additionalProperties` and `unevaluatedProperties` match against them), evaluated in bounded time.

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


def _valid(errors: Iterator[ValidationError]) -> bool:
    return next(errors, None) is None


def _evaluated_keys(validator: Any, instance: Mapping[str, Any], schema: Any) -> set[str]:
    """The keys of `instance` that `schema` evaluates, as jsonschema's own helper finds them (properties,
    additional/unevaluated/patternProperties, dependentSchemas, the applicators, if/then/else, $ref), but with
    patternProperties keys matched in bounded time (PatternTooSlow, regex.error propagate)."""
    if not isinstance(schema, Mapping):
        return set()
    keys: set[str] = set()
    for ref in (schema.get("$ref"), schema.get("$dynamicRef")):
        if ref is not None:
            resolved = validator._resolver.lookup(ref)
            inner = validator.evolve(schema=resolved.contents, _resolver=resolved.resolver)
            keys |= _evaluated_keys(inner, instance, resolved.contents)
    properties = schema.get("properties")
    if isinstance(properties, Mapping):
        keys |= properties.keys() & instance.keys()
    for keyword in ("additionalProperties", "unevaluatedProperties"):
        if (sub := schema.get(keyword)) is not None:
            keys |= {k for k, v in instance.items() if _valid(validator.descend(v, sub))}
    if "patternProperties" in schema:
        keys |= {k for k in instance if any(_matching(schema["patternProperties"], k))}
    for name, sub in (schema.get("dependentSchemas") or {}).items():
        if name in instance:
            keys |= _evaluated_keys(validator, instance, sub)
    for keyword in ("allOf", "oneOf", "anyOf"):
        for sub in schema.get(keyword, ()):
            if _valid(validator.descend(instance, sub)):
                keys |= _evaluated_keys(validator, instance, sub)
    if "if" in schema:
        if validator.evolve(schema=schema["if"]).is_valid(instance):
            keys |= _evaluated_keys(validator, instance, schema["if"])
            keys |= _evaluated_keys(validator, instance, schema.get("then"))
        else:
            keys |= _evaluated_keys(validator, instance, schema.get("else"))
    return keys


def _unevaluated_properties(
    validator: Any, unevaluated: Any, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    # jsonschema's own check would match the patternProperties keys (here and in subschemas) with `re`
    try:
        evaluated = _evaluated_keys(validator, instance, schema)
    except PatternTooSlow as exc:
        yield _too_slow(str(exc))
        return
    except regex.error as exc:
        yield ValidationError(f"a patternProperties key is not a valid regular expression: {exc}")
        return
    bad = [
        k
        for k in instance
        if k not in evaluated
        and not _valid(validator.descend(instance[k], unevaluated, path=k, schema_path=k))
    ]
    if bad and unevaluated is False:
        yield ValidationError(f"unevaluated properties are not allowed ({', '.join(map(repr, sorted(bad)))})")
    elif bad:
        listed = ", ".join(map(repr, bad))
        yield ValidationError(f"unevaluated properties are not valid under the given schema ({listed})")


BoundedValidator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    {
        "pattern": _pattern,
        "patternProperties": _pattern_properties,
        "additionalProperties": _additional_properties,
        "unevaluatedProperties": _unevaluated_properties,
    },
)
