"""`wp_work_pool`: a work pool, identified by name; `type` and `name` force replacement.

Owns the pool's identity, its store calls (create_work_pool with owner = the provider's project, which
also makes
the `default` queue) and the planned default template when `base_job_template` is omitted.
Must never plan generic attributes itself (resources.base does).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from provider.codec import UNKNOWN
from provider.resources.base import Resource, State
from reconciler.errors import WpError
from reconciler.model import WorkPool, canonical_json


def default_template_json(pool_type: Any) -> Any:
    """The type's default template as canonical JSON, or UNKNOWN when the type is not known (yet)."""
    if not isinstance(pool_type, str):
        return UNKNOWN
    from reconciler.engine.job_templates import default_base_job_template

    try:
        return canonical_json(default_base_job_template(pool_type).model_dump(mode="json"))
    except WpError:
        return UNKNOWN  # an unknown type is reported by validation, pointing at `type`


class WorkPoolResource(Resource):
    type_name: ClassVar[str] = "wp_work_pool"
    model = WorkPool
    what = "work pool"

    def identity(self, state: Mapping[str, Any]) -> Any:
        return state.get("name") if isinstance(state.get("name"), str) else UNKNOWN

    def ident_of(self, state: Mapping[str, Any]) -> tuple[str, ...]:
        return (str(state["name"]),)

    def parse_import_id(self, import_id: str) -> tuple[str, ...]:
        if not import_id or "/" in import_id:
            raise ValueError(
                f"import ID {import_id!r} is not a work pool name; write the pool's name, e.g. k8s-prod"
            )
        return (import_id,)

    def complete(self, planned: State, config: Mapping[str, Any], prior: Mapping[str, Any] | None) -> State:
        if config.get("base_job_template") is None and prior is None:
            planned["base_job_template"] = default_template_json(planned.get("type"))
        return planned

    def fetch(self, ident: tuple[str, ...]) -> WorkPool:
        return self.ctx.store.get_work_pool(ident[0])

    def create(self, obj: Any) -> None:
        pool: WorkPool = obj
        if pool.base_job_template is None:
            from reconciler.engine.job_templates import default_base_job_template

            pool = pool.model_copy(update={"base_job_template": default_base_job_template(pool.type)})
        self.ctx.store.create_work_pool(pool, owner=self.ctx.project)

    def update(self, ident: tuple[str, ...], obj: Any, changed: tuple[str, ...]) -> None:
        fields = {name: getattr(obj, name) for name in changed if name not in ("name", "type")}
        if fields:
            self.ctx.store.update_work_pool(ident[0], **fields)

    def delete(self, ident: tuple[str, ...]) -> None:
        self.ctx.store.delete_work_pool(ident[0])
