"""The provider's data sources: `wp_work_pool` (a pool with its runtime `status`) and
`wp_default_base_job_template` (`type` → `template`, a JSON string).

Owns reading them from the store / the built-in templates into state values. Must never write.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from provider.resources.base import Context, State, state_values
from provider.schema import data_source_schemas
from reconciler.model import canonical_json


def read_work_pool(ctx: Context, config: Mapping[str, Any], now: datetime) -> State:
    name = str(config["name"])
    pool = ctx.store.get_work_pool(name)
    attrs = tuple(
        a for a in data_source_schemas()["wp_work_pool"].attributes if a.name not in ("id", "status")
    )
    state = state_values(attrs, pool.model_dump(mode="json"))
    return {**state, "id": name, "status": ctx.store.work_pool_status(name, now)}


def read_default_base_job_template(config: Mapping[str, Any]) -> State:
    from reconciler.engine.job_templates import default_base_job_template

    pool_type = str(config["type"])
    template = default_base_job_template(pool_type)
    return {"id": pool_type, "type": pool_type, "template": canonical_json(template.model_dump(mode="json"))}


def read_data_source(ctx: Context, type_name: str, config: Mapping[str, Any]) -> State:
    if type_name == "wp_work_pool":
        return read_work_pool(ctx, config, datetime.now(UTC))
    if type_name == "wp_default_base_job_template":
        return read_default_base_job_template(config)
    raise KeyError(type_name)
