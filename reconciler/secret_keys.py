"""Which keys and values are secret, and masking them: one rule, used by plans, views, the API and the UI.

Owns the default secret key patterns, the mask text, what counts as a reference to a Kubernetes Secret (shown,
not masked) and `mask_secrets`. Kept apart from `reconciler.model`, which re-exports every name, so that the
CLI can mask a server's JSON without building the pydantic models. Must never do I/O.
"""

from __future__ import annotations

import fnmatch
import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any

SENSITIVE_MASK = "(sensitive)"
DEFAULT_SECRET_PATTERNS: tuple[str, ...] = ("*TOKEN*", "*SECRET*", "*PASSWORD*", "*KEY*")


# Keys that hold the *names* of Kubernetes Secrets (and the keys inside them), not secret values: a reviewer
# needs to see them (compared without `_`, any case). Under them only the reference fields are shown as written;
# anything else that looks secret is still masked.
SECRET_REFERENCE_KEYS = frozenset({"imagepullsecrets", "secretname", "secretkeyref", "secretref"})
_REFERENCE_FIELDS = frozenset({"name", "key", "optional"})


def is_secret_reference(key: str) -> bool:
    return key.replace("_", "").lower() in SECRET_REFERENCE_KEYS


def _volume_secret(key: Any, names_a_secret: bool) -> bool:
    """A volume's `secret: {secretName: ...}`: the Secret's name, not a secret."""
    return key == "secret" and names_a_secret


def is_secret_key(key: str, patterns: Iterable[str] = DEFAULT_SECRET_PATTERNS) -> bool:
    return _key_class(key, tuple(patterns)) == _SECRET


_PLAIN, _REFERENCE, _SECRET = 0, 1, 2
_SCALARS = frozenset({str, int, float, bool, type(None)})  # values masking returns as they are


@functools.lru_cache(maxsize=65536)
def _key_class(key: str, patterns: tuple[str, ...]) -> int:
    """Whether a key names a Secret reference, looks secret, or neither. Cached: a large plan masks the same
    few keys (env, image, ...) hundreds of thousands of times, and matching each against every pattern was a
    third of applying 10,000 deployments."""
    if is_secret_reference(key):
        return _REFERENCE
    upper = key.upper()
    return _SECRET if any(fnmatch.fnmatchcase(upper, p.upper()) for p in patterns) else _PLAIN


def is_secret_path(parts: Iterable[str], patterns: Iterable[str] = DEFAULT_SECRET_PATTERNS) -> bool:
    """Whether the value at a field path (`job_variables.env.API_TOKEN`) is masked: some part looks secret,
    other than a reference field (`name`, `key`) under a reference to a Kubernetes Secret."""
    pats = tuple(patterns)
    in_reference = False
    listed = list(parts)
    for i, part in enumerate(listed):
        if is_secret_reference(part) or _volume_secret(part, listed[i + 1 : i + 2] == ["secretName"]):
            in_reference = True
        elif in_reference and (part in _REFERENCE_FIELDS or part.isdigit()):
            continue
        elif is_secret_key(part, pats):
            return True
    return False


def mask_secrets(
    value: Any,
    patterns: Iterable[str] = DEFAULT_SECRET_PATTERNS,
    *,
    reference: bool = False,
    replace: Callable[[Any], Any] | None = None,
) -> Any:
    """A copy of `value` with every entry whose key looks secret replaced by `(sensitive)`; also the `value` of
    a Kubernetes-style `{name: DB_PASSWORD, value: ...}` entry. Under a reference to a Secret (`reference`),
    its `name`/`key` fields are kept. `replace(secret)` gives the replacement instead of `(sensitive)` (the
    API's digest-carrying mask, `reconciler.secret_values`): one rule decides what is secret, everywhere."""
    if type(value) in _SCALARS:  # most values: checked first, by exact type (an ABC check is slow)
        return value
    pats = patterns if type(patterns) is tuple else tuple(patterns)
    if isinstance(value, Mapping):
        named = value.get("name")
        masked_value = isinstance(named, str) and _key_class(named, pats) == _SECRET
        out: dict[Any, Any] = {}
        for k, v in value.items():
            kind = _key_class(k if type(k) is str else str(k), pats)
            if kind == _REFERENCE or _volume_secret(
                k, k == "secret" and isinstance(v, Mapping) and "secretName" in v
            ):
                out[k] = mask_secrets(v, pats, reference=True, replace=replace)
            elif reference and k in _REFERENCE_FIELDS:
                out[k] = v
            elif v is not None and (kind == _SECRET or (masked_value and k == "value")):
                out[k] = SENSITIVE_MASK if replace is None else replace(v)
            elif type(v) in _SCALARS:
                out[k] = v
            else:
                out[k] = mask_secrets(v, pats, replace=replace)
        return out
    if isinstance(value, list | tuple):
        return [
            v if type(v) in _SCALARS else mask_secrets(v, pats, reference=reference, replace=replace)
            for v in value
        ]
    return value
