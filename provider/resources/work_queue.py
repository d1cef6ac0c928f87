"""`wp_work_queue`: a queue of a pool, identified by `pool/name`; moving it to another pool replaces it.

Owns the queue's identity and store calls. The pool's `default` queue exists with its pool: declaring it
adopts and
updates it, destroying it only forgets it (the store refuses to delete it). Priority is server-assigned when
omitted. Must never plan generic attributes itself (resources.base does).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from provider.codec import UNKNOWN
from provider.resources.base import Resource
from reconciler.model import DEFAULT_QUEUE, WorkQueue


class WorkQueueResource(Resource):
    type_name: ClassVar[str] = "wp_work_queue"
    model = WorkQueue
    what = "work queue"

    def identity(self, state: Mapping[str, Any]) -> Any:
        pool, name = state.get("work_pool"), state.get("name")
        return f"{pool}/{name}" if isinstance(pool, str) and isinstance(name, str) else UNKNOWN

    def ident_of(self, state: Mapping[str, Any]) -> tuple[str, ...]:
        return (str(state["work_pool"]), str(state["name"]))

    def parse_import_id(self, import_id: str) -> tuple[str, ...]:
        pool, sep, name = import_id.partition("/")
        if not sep or not pool or not name or "/" in name:
            raise ValueError(f"import ID {import_id!r} must be POOL/QUEUE, e.g. k8s-prod/critical")
        return (pool, name)

    def fetch(self, ident: tuple[str, ...]) -> WorkQueue:
        return self.ctx.store.get_work_queue(ident[0], ident[1])

    def create(self, obj: Any) -> None:
        queue: WorkQueue = obj
        if queue.name == DEFAULT_QUEUE:
            # made with its pool: adopt it by writing the declared values
            fields = queue.model_dump(exclude={"work_pool", "name"}, exclude_unset=True)
            if fields:
                self.ctx.store.update_work_queue(queue.work_pool, queue.name, **fields)
            return
        self.ctx.store.create_work_queue(queue, owner=self.ctx.project)

    def update(self, ident: tuple[str, ...], obj: Any, changed: tuple[str, ...]) -> None:
        fields = {name: getattr(obj, name) for name in changed if name not in ("work_pool", "name")}
        if fields:
            self.ctx.store.update_work_queue(ident[0], ident[1], **fields)

    def delete(self, ident: tuple[str, ...]) -> None:
        if ident[1] == DEFAULT_QUEUE:
            return  # lives and dies with its pool
        self.ctx.store.delete_work_queue(ident[0], ident[1])
