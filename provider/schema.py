"""Terraform schemas of the provider, its resources and data sources, DERIVED from `reconciler.model`.

The attribute names, value types and defaults come from the pydantic fields of WorkPool, WorkQueue,
Deployment and
Schedule (one source of truth); the small `FACTS` table adds only what Terraform needs to know and the
model does
not say: which attributes are computed, force replacement, are sensitive or travel as JSON strings.
Owns the schema values and their protobuf form. Must never talk to a store or decide a plan.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any, Final

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from provider._proto import tfplugin6_pb2 as pb
from reconciler.model import BaseJobTemplate, Deployment, Schedule, WorkPool, WorkQueue, canonical_json

NO_DEFAULT: Final = object()


@dataclass(frozen=True)
class Attr:
    """One schema attribute. `nested` set = a LIST nested attribute of objects."""

    name: str
    type: Any  # cty type JSON (for nested: the list-of-object type)
    required: bool = False
    optional: bool = False
    computed: bool = False
    sensitive: bool = False
    force_new: bool = False
    json_string: bool = False  # a JSON document in a string, compared semantically
    timestamp: bool = False  # an ISO 8601 time in a string, compared as a time
    default: Any = NO_DEFAULT  # planned when the config is null
    nested: tuple[Attr, ...] | None = None
    description: str = ""

    @property
    def has_default(self) -> bool:
        return self.default is not NO_DEFAULT


@dataclass(frozen=True)
class Schema:
    type_name: str
    attributes: tuple[Attr, ...]
    version: int = 0
    description: str = ""

    @property
    def by_name(self) -> dict[str, Attr]:
        return {a.name: a for a in self.attributes}

    @property
    def cty_type(self) -> Any:
        return object_type(self.attributes)


def object_type(attrs: tuple[Attr, ...]) -> Any:
    return ["object", {a.name: a.type for a in attrs}]


@dataclass(frozen=True)
class Facts:
    """What Terraform needs beyond the model. `computed` fields have no default: the prior value is
    kept, and a
    create plans them unknown unless the resource can compute them."""

    model: type[BaseModel]
    force_new: frozenset[str] = frozenset()
    computed: frozenset[str] = frozenset()
    sensitive: frozenset[str] = frozenset()
    json_strings: frozenset[str] = frozenset()
    descriptions: Mapping[str, str] = field(default_factory=dict)


FACTS: Final[dict[str, Facts]] = {
    "wp_work_pool": Facts(
        WorkPool,
        force_new=frozenset({"name", "type"}),
        computed=frozenset({"base_job_template"}),
        json_strings=frozenset({"base_job_template"}),
        descriptions={"base_job_template": "JSON string; omitted = the type's default template."},
    ),
    "wp_work_queue": Facts(
        WorkQueue,
        force_new=frozenset({"work_pool", "name"}),
        computed=frozenset({"priority"}),
        descriptions={"priority": "Unique within the pool, 1 = highest; omitted = the first free priority."},
    ),
    "wp_deployment": Facts(
        Deployment,
        force_new=frozenset({"flow", "name"}),
        computed=frozenset({"flow", "work_pool", "work_queue"}),
        json_strings=frozenset({"job_variables", "parameters", "pull_steps", "parameter_schema"}),
        descriptions={
            "flow": "Defaults to the entrypoint's function name with _ replaced by -.",
            "parameter_schema": "JSON string; the flow's parameters, which `wp apply` records from the code; "
            "Terraform reads no code and leaves it unset.",
        },
    ),
    "schedules": Facts(Schedule, json_strings=frozenset({"parameters"})),
}

ID_ATTR: Final = Attr("id", "string", computed=True, description="The object's address name.")


def _unwrap_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
        if set(args) == {int, float}:  # a number that keeps whole values whole
            return float
    return annotation


def _numeric_union(annotation: Any) -> bool:
    """`int | float` (optionally with None): a Terraform number either way."""
    if typing.get_origin(annotation) not in (typing.Union, types.UnionType):
        return False
    return all(a in (int, float, type(None)) for a in typing.get_args(annotation))


def _cty(annotation: Any) -> Any:
    """The cty type of a (non-JSON) pydantic field annotation."""
    ann = _unwrap_optional(annotation)
    if ann is bool:
        return "bool"
    if ann in (int, float) or _numeric_union(ann):
        return "number"
    if ann in (str, datetime):
        return "string"
    if typing.get_origin(ann) is tuple and typing.get_args(ann)[0] is str:
        return ["list", "string"]
    raise TypeError(f"no Terraform type for {annotation!r}; add the field to FACTS.json_strings")


def _default(info: FieldInfo, json_string: bool) -> Any:
    if info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
    elif info.is_required() or info.default is None:
        return NO_DEFAULT
    else:
        value = info.default
    if json_string:
        return canonical_json(value)
    return list(value) if isinstance(value, tuple) else value


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    ann = _unwrap_optional(annotation)
    if typing.get_origin(ann) is tuple:
        inner = typing.get_args(ann)[0]
        if isinstance(inner, type) and issubclass(inner, BaseModel) and inner is not BaseJobTemplate:
            return inner
    return None


def derive_attributes(facts: Facts) -> tuple[Attr, ...]:
    """One Attr per model field, shaped by `facts`."""
    out = []
    for name, info in facts.model.model_fields.items():
        js = name in facts.json_strings
        computed_only = name in facts.computed
        nested_model = None if js else _nested_model(info.annotation)
        if nested_model is not None:
            nested = derive_attributes(FACTS[name])
            ctype: Any = ["list", object_type(nested)]
            default: Any = []  # omitting the attribute means "no schedules", not "keep whatever is live"
        else:
            nested = None
            ctype = "string" if js else _cty(info.annotation)
            default = NO_DEFAULT if computed_only else _default(info, js)
        required = info.is_required() and not computed_only
        out.append(
            Attr(
                name,
                ctype,
                required=required,
                optional=not required,
                computed=computed_only or default is not NO_DEFAULT,
                force_new=name in facts.force_new,
                sensitive=name in facts.sensitive,
                json_string=js,
                timestamp=_unwrap_optional(info.annotation) is datetime,
                default=default,
                nested=nested,
                description=facts.descriptions.get(name, ""),
            )
        )
    return tuple(out)


@cache
def resource_schemas() -> dict[str, Schema]:
    return {
        name: Schema(name, (ID_ATTR, *derive_attributes(facts)))
        for name, facts in FACTS.items()
        if name.startswith("wp_")
    }


@cache
def data_source_schemas() -> dict[str, Schema]:
    pool_attrs = tuple(
        Attr(a.name, a.type, required=a.name == "name", computed=a.name != "name", json_string=a.json_string)
        for a in derive_attributes(FACTS["wp_work_pool"])
    )
    return {
        "wp_work_pool": Schema(
            "wp_work_pool",
            (
                ID_ATTR,
                *pool_attrs,
                Attr("status", "string", computed=True, description="PAUSED, READY or NOT_READY"),
            ),
        ),
        "wp_default_base_job_template": Schema(
            "wp_default_base_job_template",
            (
                ID_ATTR,
                Attr("type", "string", required=True, description="process, docker or kubernetes"),
                Attr(
                    "template", "string", computed=True, json_string=True, description="The template as JSON."
                ),
            ),
        ),
    }


@cache
def provider_schema() -> Schema:
    return Schema(
        "provider",
        (
            Attr("api_url", "string", optional=True, description="A wp server's URL; default WP_API_URL."),
            Attr("api_key", "string", optional=True, sensitive=True, description="Default WP_API_KEY."),
            Attr(
                "project",
                "string",
                optional=True,
                description='Owner recorded on objects; default "terraform".',
            ),
        ),
    )


def _attr_pb(a: Attr) -> pb.Schema.Attribute:
    msg = pb.Schema.Attribute(
        name=a.name,
        description=a.description,
        required=a.required,
        optional=a.optional,
        computed=a.computed,
        sensitive=a.sensitive,
    )
    if a.nested is not None:
        msg.nested_type.CopyFrom(
            pb.Schema.Object(attributes=[_attr_pb(n) for n in a.nested], nesting=pb.Schema.Object.LIST)
        )
    else:
        msg.type = json.dumps(a.type).encode()
    return msg


def to_pb(schema: Schema) -> pb.Schema:
    block = pb.Schema.Block(
        version=schema.version,
        attributes=[_attr_pb(a) for a in schema.attributes],
        description=schema.description,
    )
    return pb.Schema(version=schema.version, block=block)
