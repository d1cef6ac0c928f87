"""The Plan as data: what an apply would change, in a total order, with a stable JSON form.

Owns Action, Reason, AttributeChange, Note, Change, Plan, the summary counts, the total order of changes and the
JSON form (`plan_to_json` / `plan_from_json`, SPEC §3) in which secrets are never written in clear.
Renderers only render what is here; diff builds it. Must never do I/O.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import cached_property
from json.encoder import encode_basestring as _json_string  # canonical_json(a str), ensure_ascii=False
from typing import Any

from reconciler.model import (
    DEFAULT_SECRET_PATTERNS,
    KINDS,
    SENSITIVE_MASK,
    Key,
    canonical_json,
    is_secret_path,
    mask_secrets,
)

FORMAT_VERSION = "1.0"


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    REPLACE = "replace"
    NOOP = "no-op"

    @property
    def json_actions(self) -> list[str]:
        return {
            Action.CREATE: ["create"],
            Action.UPDATE: ["update"],
            Action.DELETE: ["delete"],
            Action.REPLACE: ["delete", "create"],
            Action.NOOP: ["no-op"],
        }[self]

    @classmethod
    def from_json_actions(cls, actions: Sequence[str]) -> Action:
        for a in cls:
            if a.json_actions == list(actions):
                return a
        raise ValueError(f"unknown actions {list(actions)!r}")

    @property
    def symbol(self) -> str:
        return {"create": "+", "update": "~", "delete": "-", "replace": "-/+", "no-op": " "}[self.value]


class Reason(StrEnum):
    """Why a change is in the plan (the JSON `action_reason`)."""

    NOT_IN_STORE = "create_because_not_in_store"
    CONFIG_CHANGED = "update_because_config_changed"
    ADOPT = "update_to_adopt_unmanaged_object"
    CANNOT_UPDATE = "replace_because_cannot_update"
    NOT_DECLARED = "delete_because_no_resource_config"
    DESTROY = "delete_because_destroy"
    CHANGED_OUTSIDE = "changed_outside_wp"
    DELETED_OUTSIDE = "deleted_outside_wp"


@dataclass(frozen=True)
class AttributeChange:
    """One changed attribute; `path` is dotted (`job_variables.env.FOO`)."""

    path: str
    before: Any
    after: Any
    forces_replacement: bool = False


@dataclass(frozen=True)
class Note:
    """An impact note shown under a change: what it does to runs and rendered jobs."""

    kind: str  # schedule_runs | rendered_job | invalid_job | runs_in_flight | info
    message: str
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Change:
    key: Key
    action: Action
    before: Mapping[str, Any] | None  # live attributes (None on create)
    after: Mapping[str, Any] | None  # desired attributes (None on delete)
    reason: Reason | None = None
    attributes: tuple[AttributeChange, ...] = ()
    owner_before: str | None = None
    notes: tuple[Note, ...] = ()

    @property
    def address(self) -> str:
        return self.key.address


@dataclass(frozen=True)
class Summary:
    add: int
    change: int
    destroy: int

    @property
    def has_changes(self) -> bool:
        return bool(self.add or self.change or self.destroy)


@dataclass(frozen=True)
class Plan:
    project: str
    changes: tuple[Change, ...]  # every declared or deleted object, no-ops included, in apply order
    drift: tuple[Change, ...] = ()  # live objects changed outside wp since the last apply
    fingerprints: Mapping[str, str] = field(
        default_factory=dict
    )  # address -> fingerprint of every live object read
    warnings: tuple[str, ...] = ()
    prune: bool = False
    targets: tuple[str, ...] = ()
    destroy: bool = False
    source_dir: str | None = None
    secret_patterns: tuple[str, ...] = DEFAULT_SECRET_PATTERNS
    # addresses the config marks `protect: true`; the store keeps them, so protection outlives the config block
    protected: tuple[str, ...] = ()
    # addresses whose protection this plan turns on or off (an apply is needed even with no other change)
    protection_changes: tuple[str, ...] = ()
    format_version: str = FORMAT_VERSION
    # True when every change's `after` is the attribute form (`model.attributes`) of a validated model, as in a
    # plan made from a loaded config: a store may then write it without validating it again. False for a plan
    # read from a file or a request, and by default. Not part of the plan's value or of its JSON form.
    validated: bool = field(default=False, compare=False)

    # Computed once per plan (it is frozen): an apply asks for both several times over 24,000 changes.
    @cached_property
    def actionable(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.action is not Action.NOOP)

    @cached_property
    def summary(self) -> Summary:
        add = change = destroy = 0
        for c in self.changes:
            if c.action is Action.CREATE:
                add += 1
            elif c.action is Action.UPDATE:
                change += 1
            elif c.action is Action.DELETE:
                destroy += 1
            elif c.action is Action.REPLACE:
                add += 1
                destroy += 1
        return Summary(add, change, destroy)

    @property
    def has_changes(self) -> bool:
        return self.summary.has_changes or bool(self.protection_changes)

    def with_changes(self, changes: Iterable[Change]) -> Plan:
        return replace(self, changes=order_changes(changes))


def _order_key(change: Change) -> tuple[int, int, str]:
    """Deletes first in reverse dependency order, then everything else in KINDS order; then by address."""
    rank = KINDS[change.key.kind].order
    if change.action is Action.DELETE:
        return (0, -rank, change.address)
    return (1, rank, change.address)


def order_changes(changes: Iterable[Change]) -> tuple[Change, ...]:
    return tuple(sorted(changes, key=_order_key))


# ---------------------------------------------------------------------------------------------------- JSON form


def _mask(value: Any, patterns: Sequence[str]) -> Any:
    return mask_secrets(value, patterns) if value is not None else None


def _attr_is_secret(path: str, patterns: Sequence[str]) -> bool:
    return is_secret_path(path.split("."), patterns)


def change_to_json(change: Change, patterns: Sequence[str] = DEFAULT_SECRET_PATTERNS) -> dict[str, Any]:
    return {
        "address": change.address,
        "kind": change.key.kind.value,
        "name": change.key.name,
        "actions": change.action.json_actions,
        "action_reason": change.reason.value if change.reason else None,
        "before": _mask(change.before, patterns),
        "after": _mask(change.after, patterns),
        "owner_before": change.owner_before,
        "attribute_changes": [
            {
                "path": a.path,
                "before": SENSITIVE_MASK if _attr_is_secret(a.path, patterns) else _mask(a.before, patterns),
                "after": SENSITIVE_MASK if _attr_is_secret(a.path, patterns) else _mask(a.after, patterns),
                "forces_replacement": a.forces_replacement,
            }
            for a in change.attributes
        ],
        "notes": [{"kind": n.kind, "message": n.message, "data": dict(n.data)} for n in change.notes],
    }


def plan_to_json(plan: Plan) -> dict[str, Any]:
    """The plan file (SPEC §3). Secrets are masked; `plan_hash` identifies the reviewed plan."""
    patterns = plan.secret_patterns
    body: dict[str, Any] = {
        "format_version": plan.format_version,
        "project": plan.project,
        "prune": plan.prune,
        "destroy": plan.destroy,
        "targets": list(plan.targets),
        "source_dir": plan.source_dir,
        "resource_changes": [change_to_json(c, patterns) for c in plan.changes],
        "resource_drift": [change_to_json(c, patterns) for c in plan.drift],
        "fingerprints": dict(sorted(plan.fingerprints.items())),
        "secret_patterns": list(patterns),
        "protected": list(plan.protected),
        "protection_changes": list(plan.protection_changes),
        "warnings": list(plan.warnings),
        "summary": {"add": plan.summary.add, "change": plan.summary.change, "destroy": plan.summary.destroy},
    }
    body["plan_hash"] = plan_hash(body)
    return body


def reviewed_hash(plan: Plan) -> str:
    """plan_to_json(plan)["plan_hash"], without building the rest of the plan file (an apply records it).

    The digest is fed the text `plan_hash` would encode, piece by piece: one change's masked values at a time,
    and masked only when their text could hold a key that masking acts on (`_masked_json`). A 24,000-change plan
    copied every value through `mask_secrets` and held the whole encoded list at once."""
    patterns = plan.secret_patterns
    needles = _needles(patterns)
    digest = hashlib.sha256(b"[")
    first = True
    # canonical_json of an address is the encoder's own string encoding, and of an action's list one text per
    # action: made once here, not once per change of a 24,000-change plan
    actions = {a: canonical_json(a.json_actions) for a in Action}
    for c in plan.changes:
        before = "null" if c.before is None else _masked_json(c.before, patterns, needles)
        after = _masked_json(c.after, patterns, needles, finite=plan.validated)  # JSON-mode dumps: finite
        piece = f"[{_json_string(c.address)},{actions[c.action]},{before},{after}]"
        digest.update((piece if first else "," + piece).encode())
        first = False
    if plan.protection_changes:
        piece = canonical_json(("protection", list(plan.protected), list(plan.protection_changes)))
        digest.update((piece if first else "," + piece).encode())
    digest.update(b"]")
    return digest.hexdigest()


def _masked_json(
    value: Any, patterns: Sequence[str], needles: tuple[str, ...] | None, finite: bool = False
) -> str:
    """canonical_json(_mask(value, patterns)). A value whose text cannot hold a key masking acts on (see
    `_needles`) is its own masked form: its text is used as it is, without the copy `mask_secrets` makes.
    `finite`: the value holds no NaN or infinity (see canonical_json)."""
    if type(value) is not dict:  # None, or a mapping of another type (which masking turns into a dict)
        return canonical_json(_mask(value, patterns))
    text = canonical_json(value, finite=finite)
    if needles is None or '"value":' in text:  # an entry's `value` is masked when its `name` looks secret
        return canonical_json(mask_secrets(value, patterns))
    upper = text.upper()
    if any(n in upper for n in needles) or "SECRET" in upper.replace("_", ""):
        return canonical_json(mask_secrets(value, patterns))
    return text


def _needles(patterns: Sequence[str]) -> tuple[str, ...] | None:
    """For each secret pattern, a text that every key it matches contains (upper-cased, as keys are matched):
    its longest literal part. Text without any of them, without `SECRET` (every Secret-reference key and a
    volume's `secret` hold it) and without a `value` key has nothing to mask. None: some pattern has no such
    part (`*`, a `[...]` class, a character JSON escapes), so every value is masked the slow way."""
    needles = []
    for pattern in patterns:
        if "[" in pattern:
            return None
        literal = max(re.split(r"[*?]", pattern.upper()), key=len)
        if not literal or any(c in literal for c in '"\\') or any(ord(c) < 0x20 for c in literal):
            return None
        needles.append(literal)
    return tuple(needles)


def plan_hash(plan_json: Mapping[str, Any]) -> str:
    """A digest of what a reviewer saw: the actions and masked values, not the fingerprints or warnings."""
    reviewed: list[Any] = [
        (rc["address"], rc["actions"], rc["before"], rc["after"]) for rc in plan_json["resource_changes"]
    ]
    if plan_json.get("protection_changes"):
        reviewed.append(("protection", plan_json["protected"], plan_json["protection_changes"]))
    return hashlib.sha256(canonical_json(reviewed).encode()).hexdigest()


def _change_from_json(rc: Mapping[str, Any]) -> Change:
    return Change(
        key=Key.parse(rc["address"]),
        action=Action.from_json_actions(rc["actions"]),
        before=rc.get("before"),
        after=rc.get("after"),
        reason=Reason(rc["action_reason"]) if rc.get("action_reason") else None,
        attributes=tuple(
            AttributeChange(a["path"], a["before"], a["after"], a.get("forces_replacement", False))
            for a in rc.get("attribute_changes", [])
        ),
        owner_before=rc.get("owner_before"),
        notes=tuple(Note(n["kind"], n["message"], n.get("data", {})) for n in rc.get("notes", [])),
    )


def plan_from_json(data: Mapping[str, Any]) -> Plan:
    """Read a plan file back. Masked secrets stay masked: apply re-reads them from the config."""
    version = str(data.get("format_version", ""))
    if version.split(".")[0] != FORMAT_VERSION.split(".")[0]:
        raise ValueError(f"plan format_version {version!r} is not supported; this wp writes {FORMAT_VERSION}")
    return Plan(
        project=data["project"],
        changes=tuple(_change_from_json(rc) for rc in data["resource_changes"]),
        drift=tuple(_change_from_json(rc) for rc in data.get("resource_drift", [])),
        fingerprints=dict(data.get("fingerprints", {})),
        warnings=tuple(data.get("warnings", [])),
        prune=bool(data.get("prune", False)),
        targets=tuple(data.get("targets", [])),
        destroy=bool(data.get("destroy", False)),
        source_dir=data.get("source_dir"),
        secret_patterns=tuple(data.get("secret_patterns", DEFAULT_SECRET_PATTERNS)),
        protected=tuple(data.get("protected", [])),
        protection_changes=tuple(data.get("protection_changes", [])),
        format_version=version,
    )
