"""What every wp resource does the same way: the Terraform resource lifecycle over a derived schema.

Owns planning (config → planned state: defaults, computed values kept or unknown, JSON strings compared
semantically so that reformatting never shows a diff, replace-forcing attributes), state ↔ model conversion,
validation into diagnostics with attribute paths, read with prior spellings kept, and state upgrade
(attributes no
longer in the schema dropped). Each resource supplies only its identity, its store calls and its extra checks.
Must never touch protobuf (that is the servicer's edge).
"""

from __future__ import annotations

import contextlib
import json
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

import pydantic
from pydantic import BaseModel

from provider.codec import UNKNOWN, is_wholly_known
from provider.schema import Attr, Schema, resource_schemas
from reconciler.diagnostics import Diagnostic, error
from reconciler.errors import NotFoundError
from reconciler.model import canonical_json
from reconciler.secret_values import has_sealed, unseal
from reconciler.store.base import Store

State = dict[str, Any]


@dataclass
class Context:
    """What resources share in one provider process: the owner to record and a lazily opened store."""

    project: str
    open_store: Callable[[], Store]
    _store: Store | None = field(default=None, repr=False)
    # Terraform calls the provider from several threads at once (-parallelism): one store for all of them.
    _opening: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def store(self) -> Store:
        with self._opening:
            if self._store is None:
                self._store = self.open_store()
            return self._store


@dataclass(frozen=True)
class PlanResult:
    planned: State | None
    requires_replace: tuple[tuple[str | int, ...], ...] = ()
    diagnostics: tuple[Diagnostic, ...] = ()


# ------------------------------------------------------------------------------ semantic equality
def same(attr: Attr, a: Any, b: Any) -> bool:
    """Equal as the user means it: JSON by value, times by instant, nested lists element by element."""
    if a is UNKNOWN or b is UNKNOWN:
        return False
    if a is None or b is None:
        return a is b
    if attr.nested is not None:
        return len(a) == len(b) and all(_same_object(attr.nested, x, y) for x, y in zip(a, b, strict=True))
    if attr.json_string:
        x, y = _json_value(a), _json_value(b)
        # through a wp server, secrets come back sealed: equal when each mask matches the other side's value
        return bool(x == y or (has_sealed(x) and unseal(x, y) == y) or (has_sealed(y) and unseal(y, x) == x))
    if attr.timestamp:
        return bool(_time_value(a) == _time_value(b))
    return bool(a == b)


def _same_object(attrs: tuple[Attr, ...], a: Any, b: Any) -> bool:
    if a is UNKNOWN or b is UNKNOWN or not isinstance(a, Mapping) or not isinstance(b, Mapping):
        return False
    return all(same(x, a.get(x.name), b.get(x.name)) for x in attrs)


def _json_value(text: str) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


def _time_value(text: str) -> Any:
    try:
        return datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return text


def settle(attr: Attr, live: Any, prior: Any) -> Any:
    """The value to store: the prior spelling when it means the same as the live value, else the live
    value."""
    if attr.nested is not None and isinstance(live, list) and isinstance(prior, list):
        # keyed by slug: the store's order is not the user's, so the prior order wins
        by_slug = {p.get("slug"): p for p in prior if isinstance(p, Mapping)}
        rank = {slug: i for i, slug in enumerate(by_slug)}
        ordered = sorted(live, key=lambda e: rank.get(e.get("slug"), len(rank)))
        return [_settle_object(attr.nested, e, by_slug.get(e.get("slug"))) for e in ordered]
    if attr.type == ["list", "string"] and isinstance(live, list) and isinstance(prior, list):
        return prior if sorted(live) == sorted(prior) else live  # tags: a store may sort them
    return prior if prior is not None and same(attr, live, prior) else live


def _settle_object(
    attrs: tuple[Attr, ...], live: Mapping[str, Any], prior: Mapping[str, Any] | None
) -> State:
    return {a.name: settle(a, live.get(a.name), (prior or {}).get(a.name)) for a in attrs}


# ---------------------------------------------------------------------------------------------- planning
def plan_object(attrs: tuple[Attr, ...], prior: Mapping[str, Any] | None, config: Mapping[str, Any]) -> State:
    """Proposed values per attribute: config where set (prior spelling if equal), else default, else prior
    (computed), else unknown on create (computed) or null."""
    return {
        a.name: _plan_attr(a, (prior or {}).get(a.name), config.get(a.name), prior is None) for a in attrs
    }


def _plan_attr(attr: Attr, prior: Any, cfg: Any, creating: bool) -> Any:
    if cfg is UNKNOWN:
        return UNKNOWN
    if cfg is None:
        if attr.has_default:
            cfg = attr.default
        elif attr.computed:
            return UNKNOWN if creating or prior is None else prior
        else:
            return None
    if attr.nested is not None:
        by_slug = {p.get("slug"): p for p in prior or () if isinstance(p, Mapping)}
        return [
            UNKNOWN if e is UNKNOWN else plan_object(attr.nested, by_slug.get(e.get("slug")), e) for e in cfg
        ]
    return settle(attr, cfg, prior)


def replace_paths(
    schema: Schema, prior: Mapping[str, Any], planned: Mapping[str, Any]
) -> tuple[tuple[str], ...]:
    return tuple(
        (a.name,)
        for a in schema.attributes
        if a.force_new and not same(a, planned.get(a.name), prior.get(a.name))
    )


# ------------------------------------------------------------------------------ state <-> model
def model_data(attrs: tuple[Attr, ...], state: Mapping[str, Any]) -> dict[str, Any]:
    """State values as model input: JSON strings parsed; null and unknown left out (the model's default)."""
    data: dict[str, Any] = {}
    for a in attrs:
        v = state.get(a.name)
        if v is None or v is UNKNOWN or a.name == "id":
            continue
        if a.json_string:
            v = json.loads(v)
        elif a.nested is not None:
            v = [model_data(a.nested, e) for e in v]
        data[a.name] = v
    return data


def state_values(attrs: tuple[Attr, ...], dumped: Mapping[str, Any]) -> State:
    """A model's JSON dump as state values: JSON fields as canonical JSON strings."""
    out: State = {}
    for a in attrs:
        v = dumped.get(a.name)
        if a.json_string and v is not None:
            v = canonical_json(v)
        elif a.nested is not None and v is not None:
            v = [state_values(a.nested, e) for e in v]
        out[a.name] = v
    return out


def pydantic_diagnostics(exc: pydantic.ValidationError, what: str) -> list[Diagnostic]:
    out = []
    for err in exc.errors():
        path = tuple(p for p in err["loc"] if isinstance(p, str | int))
        msg = err["msg"].removeprefix("Value error, ")
        out.append(error(f"Invalid {what}: {msg}", f"{'.'.join(map(str, path))}: {msg}", path=path))
    return out


def json_diagnostics(
    attrs: tuple[Attr, ...], config: Mapping[str, Any], prefix: tuple[str | int, ...] = ()
) -> list[Diagnostic]:
    """Every JSON-string attribute that does not parse, pointing at it."""
    out: list[Diagnostic] = []
    for a in attrs:
        v = config.get(a.name)
        if a.nested is not None and isinstance(v, list):
            for i, e in enumerate(v):
                if isinstance(e, Mapping):
                    out += json_diagnostics(a.nested, e, (*prefix, a.name, i))
        elif a.json_string and isinstance(v, str):
            try:
                json.loads(v)
            except ValueError as exc:
                out.append(
                    error(
                        f"{a.name} is not valid JSON",
                        f'{exc}. Write it with jsonencode({{...}}) or file("x.json").',
                        path=(*prefix, a.name),
                    )
                )
    return out


class Resource(ABC):
    """One managed resource type. Subclasses name their model, identity and store calls."""

    type_name: ClassVar[str]
    model: ClassVar[type[BaseModel]]
    what: ClassVar[str]  # "work pool", for messages

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    @property
    def schema(self) -> Schema:
        return resource_schemas()[self.type_name]

    @property
    def fields(self) -> tuple[Attr, ...]:
        return tuple(a for a in self.schema.attributes if a.name != "id")

    # ------------------------------------------------------------------ per resource
    @abstractmethod
    def identity(self, state: Mapping[str, Any]) -> Any:
        """The id string of a (planned) state, or UNKNOWN while its identity fields are unknown."""

    @abstractmethod
    def parse_import_id(self, import_id: str) -> tuple[str, ...]: ...

    @abstractmethod
    def fetch(self, ident: tuple[str, ...]) -> BaseModel:
        """The live object; NotFoundError when it is gone."""

    @abstractmethod
    def ident_of(self, state: Mapping[str, Any]) -> tuple[str, ...]: ...

    @abstractmethod
    def create(self, obj: Any) -> None: ...

    @abstractmethod
    def update(self, ident: tuple[str, ...], obj: Any, changed: tuple[str, ...]) -> None: ...

    @abstractmethod
    def delete(self, ident: tuple[str, ...]) -> None: ...

    def complete(self, planned: State, config: Mapping[str, Any], prior: Mapping[str, Any] | None) -> State:
        """Fill computed values the provider can know at plan time (pure)."""
        return planned

    def check(self, planned: Mapping[str, Any]) -> list[Diagnostic]:
        """Plan-time checks that need the store (e.g. job variables against the pool's schema)."""
        return []

    # ------------------------------------------------------------------ lifecycle
    def validate(self, config: Mapping[str, Any]) -> list[Diagnostic]:
        diags = json_diagnostics(self.fields, config)
        if diags:
            return diags
        filled = self.complete(plan_object(self.fields, None, config), config, None)
        return self.model_diagnostics(filled)

    def model_diagnostics(self, state: Mapping[str, Any]) -> list[Diagnostic]:
        """Model validation of the known values; errors about unknown (not yet known) attributes are left for
        later, when Terraform knows them."""
        unknown = {k for k, v in state.items() if not is_wholly_known(v)}
        known = {k: v for k, v in state.items() if k not in unknown}
        try:
            self.model.model_validate(model_data(self.fields, known))
        except pydantic.ValidationError as exc:
            return [d for d in pydantic_diagnostics(exc, self.what) if not (d.path and d.path[0] in unknown)]
        return []

    def plan(self, prior: Mapping[str, Any] | None, config: Mapping[str, Any] | None) -> PlanResult:
        if config is None:
            return PlanResult(None)
        diags = json_diagnostics(self.fields, config)
        if diags:
            return PlanResult(dict(prior) if prior else None, (), tuple(diags))
        planned = plan_object(self.fields, prior, config)
        planned = self.complete(planned, config, prior)
        planned["id"] = self.identity(planned)
        diags = self.model_diagnostics(planned)
        if not diags:
            diags = self.check(planned)
        replace = replace_paths(self.schema, prior, planned) if prior is not None else ()
        return PlanResult(planned, replace, tuple(diags))

    def apply(self, prior: Mapping[str, Any] | None, planned: Mapping[str, Any] | None) -> State | None:
        if planned is None:
            if prior is not None:
                self._delete_if_present(self.ident_of(prior))
            return None
        obj = self.model.model_validate(model_data(self.fields, planned))
        if prior is None:
            self.create(obj)
        else:
            changed = tuple(
                a.name for a in self.fields if not same(a, planned.get(a.name), prior.get(a.name))
            )
            self.update(self.ident_of(prior), obj, changed)
        return self.to_state(self.fetch(self.ident_of(planned)), planned)

    def _delete_if_present(self, ident: tuple[str, ...]) -> None:
        with contextlib.suppress(NotFoundError):  # already gone: the goal of a destroy is reached
            self.delete(ident)

    def read(self, state: Mapping[str, Any]) -> State | None:
        try:
            live = self.fetch(self.ident_of(state))
        except NotFoundError:
            return None  # Terraform drops it from state and plans a create
        return self.to_state(live, state)

    def import_state(self, import_id: str) -> State:
        return self.to_state(self.fetch(self.parse_import_id(import_id)), None)

    def to_state(self, live: BaseModel, prior: Mapping[str, Any] | None) -> State:
        values = state_values(self.fields, live.model_dump(mode="json"))
        state = {a.name: settle(a, values.get(a.name), (prior or {}).get(a.name)) for a in self.fields}
        state["id"] = self.identity(state)
        return state

    def upgrade(self, raw: Mapping[str, Any]) -> State:
        """Any earlier state as the current schema: attributes no longer in it dropped, new ones null."""
        return _keep_known_attributes(self.schema.attributes, raw)


def _keep_known_attributes(attrs: tuple[Attr, ...], raw: Mapping[str, Any]) -> State:
    out: State = {}
    for a in attrs:
        v = raw.get(a.name)
        if a.nested is not None and isinstance(v, list):
            v = [_keep_known_attributes(a.nested, e) for e in v if isinstance(e, Mapping)]
        out[a.name] = v
    return out
