"""Secret values once they leave the store: sealed in API answers, put back where known, masked in free text.

Owns, on top of `model.mask_secrets` (the one rule of which values are secret):
- the *sealed* mask the HTTP API shows instead of a secret, `(sensitive sha256:<16 hex>)`: a digest of the value
  that lets a client holding a clear value tell whether the store holds the same one (a plan through a server
  still sees a changed secret), and `unseal`, which puts a clear value back where its digest matches;
- which fields of each object can hold secrets (`SECRET_FIELDS`), and sealing a model dump by them;
- the secret values a run can see (`run_secret_values`) and masking them, in the forms a program prints them
  (as is, JSON- or repr-escaped, base64, URL-encoded), in free text: state messages and log lines.
  Values shorter than MIN_MASKED_LENGTH are not masked in text: masking every "a" or "1" would garble output.

Must never do I/O.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote, quote_plus

from reconciler.model import (
    DEFAULT_SECRET_PATTERNS,
    SENSITIVE_MASK,
    Deployment,
    FlowRun,
    WorkPool,
    canonical_json,
    mask_secrets,
)

SEALED_PREFIX = "(sensitive sha256:"
# Shorter secret values are left in free text (they are still masked in every structured field).
MIN_MASKED_LENGTH = 6
# The fields of a model dump (by kind of object) that can hold secrets, masked by key as the CLI masks them;
# a pool's template is handled by `_seal_template` (its variables' defaults are keyed by the variable's name).
SECRET_FIELDS: Mapping[str, tuple[str, ...]] = {
    "deployment": ("parameters", "job_variables", "pull_steps"),
    "schedule": ("parameters",),
    "flow_run": ("parameters", "job_variables"),
}


def seal(value: Any) -> str:
    """The sealed mask of one secret value. Anyone who holds the API key can test a guess of the value against
    it, which they could also do by applying the guess; what the mask prevents is reading it."""
    digest = hashlib.sha256(b"wp-sealed-secret\0" + canonical_json(value).encode()).hexdigest()[:16]
    return f"{SEALED_PREFIX}{digest})"


def is_sealed(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(SEALED_PREFIX) and value.endswith(")")


def has_sealed(value: Any) -> bool:
    if isinstance(value, Mapping):
        return any(has_sealed(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(has_sealed(v) for v in value)
    return is_sealed(value)


def seal_secrets(value: Any, patterns: Iterable[str] = DEFAULT_SECRET_PATTERNS) -> Any:
    return mask_secrets(value, patterns, replace=seal)


def unseal(shown: Any, clear: Any) -> Any:
    """`shown` with each sealed mask replaced by the value at the same place in `clear`, where that value seals
    to the same mask; a mask that matches nothing stays (it differs from what `clear` holds)."""
    if is_sealed(shown):
        return clear if clear is not None and seal(clear) == shown else shown
    if isinstance(shown, Mapping) and isinstance(clear, Mapping):
        return {k: unseal(v, clear.get(k)) for k, v in shown.items()}
    if isinstance(shown, list | tuple) and isinstance(clear, list | tuple):
        return [unseal(v, clear[i] if i < len(clear) else None) for i, v in enumerate(shown)]
    return shown


def _seal_template(template: Any, patterns: Iterable[str] = DEFAULT_SECRET_PATTERNS) -> Any:
    """A pool's base job template with its secret variables' defaults and secret job settings sealed."""
    if not isinstance(template, Mapping):
        return template
    out = dict(template)
    variables = template.get("variables")
    properties = variables.get("properties") if isinstance(variables, Mapping) else None
    if isinstance(properties, Mapping) and isinstance(variables, Mapping):
        sealed: dict[str, Any] = {}
        for name, schema in properties.items():
            if isinstance(schema, Mapping) and schema.get("default") is not None:
                schema = {**schema, "default": seal_secrets({name: schema["default"]}, patterns)[name]}
            sealed[name] = schema
        out["variables"] = {**variables, "properties": sealed}
    if "job_configuration" in template:
        out["job_configuration"] = seal_secrets(template["job_configuration"], patterns)
    return out


def seal_dump(
    kind: str, data: Mapping[str, Any], patterns: Iterable[str] = DEFAULT_SECRET_PATTERNS
) -> dict[str, Any]:
    """A model dump (or attributes) of `kind` ("deployment", "work_pool", "flow_run", ...) with secrets sealed."""
    out = dict(data)
    if kind == "work_pool":
        if "base_job_template" in out:
            out["base_job_template"] = _seal_template(out["base_job_template"], patterns)
        return out
    for name in SECRET_FIELDS.get(kind, ()):
        if out.get(name):
            out[name] = seal_secrets(out[name], patterns)
    return out


# ------------------------------------------------------------------------------------------- free text


def _leaves(value: Any) -> Iterable[str]:
    if isinstance(value, Mapping):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _leaves(v)
    elif value is not None and not isinstance(value, bool):
        yield str(value)


def secret_leaves(value: Any, patterns: Iterable[str] = DEFAULT_SECRET_PATTERNS) -> set[str]:
    """Every scalar, as text, that `mask_secrets` would hide in `value`."""
    found: set[str] = set()

    def keep(secret: Any) -> str:
        found.update(_leaves(secret))
        return SENSITIVE_MASK

    mask_secrets(value, patterns, replace=keep)
    return found


def _template_secrets(pool: WorkPool | None, patterns: Iterable[str] = DEFAULT_SECRET_PATTERNS) -> set[str]:
    if pool is None or pool.base_job_template is None:
        return set()
    found: set[str] = set()
    template = pool.base_job_template.model_dump(mode="json")
    properties = (template.get("variables") or {}).get("properties") or {}
    for name, schema in properties.items():
        if isinstance(schema, Mapping):
            found |= secret_leaves({name: schema.get("default")}, patterns)
    return found | secret_leaves(template.get("job_configuration"), patterns)


def run_secret_values(
    run: FlowRun,
    deployment: Deployment | None,
    pool: WorkPool | None,
    patterns: Iterable[str] = DEFAULT_SECRET_PATTERNS,
) -> set[str]:
    """The secret values a run's process may see: its own and its deployment's secret parameters and job
    variables (and pull steps), and its pool template's secret defaults."""
    pats = tuple(patterns)
    found = secret_leaves(run.parameters, pats) | secret_leaves(run.job_variables, pats)
    found |= _template_secrets(pool, pats)
    if deployment is not None:
        found |= secret_leaves(deployment.parameters, pats) | secret_leaves(deployment.job_variables, pats)
        found |= secret_leaves(list(deployment.pull_steps), pats)
    return found


def _forms(secret: str) -> Iterable[str]:
    """The ways a program commonly prints a value: as is, escaped in JSON or a Python repr, base64, URL-encoded."""
    yield secret
    yield json.dumps(secret)[1:-1]
    yield json.dumps(secret, ensure_ascii=False)[1:-1]
    yield repr(secret)[1:-1]
    raw = secret.encode()
    yield base64.b64encode(raw).decode()
    yield base64.b64encode(raw).decode().rstrip("=")
    yield base64.urlsafe_b64encode(raw).decode().rstrip("=")
    yield quote(secret, safe="")
    yield quote_plus(secret)


def text_masks(secrets: Iterable[str]) -> tuple[str, ...]:
    """The strings `mask_text` replaces for these secret values: each value of MIN_MASKED_LENGTH or more
    characters in each of its printed forms, longest first (so a form is masked whole, not a part of it)."""
    forms = {
        f for s in secrets if len(s) >= MIN_MASKED_LENGTH for f in _forms(s) if len(f) >= MIN_MASKED_LENGTH
    }
    return tuple(sorted(forms, key=lambda f: (-len(f), f)))


def mask_text(text: str, masks: Sequence[str]) -> str:
    """`text` with every occurrence of each mask (from `text_masks`) replaced by `(sensitive)`."""
    for form in masks:
        if form in text:
            text = text.replace(form, SENSITIVE_MASK)
    return text
