"""`wp_work_queue`: a queue of a pool, identified by `pool/name`; moving it to another pool replaces it.

Owns the queue's identity and store calls. The pool's `default` queue exists with its pool: declaring it
adopts and
updates it, destroying it only forgets it (the store refuses to delete it). Priority is server-assigned when
omitted. Must never plan generic attributes itself (resources.base does).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, ClassVar

from provider.codec import UNKNOWN
from provider.resources.base import Resource
from reconciler.model import DEFAULT_QUEUE, WorkQueue

# Terraform creates resources in parallel threads of one provider process: priority moves are serialized.
_PRIORITIES = threading.Lock()


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
        with _PRIORITIES:
            if queue.priority is not None:
                self._free_default_priority(queue.work_pool, queue.priority)
            self.ctx.store.create_work_queue(queue, owner=self.ctx.project)

    def _free_default_priority(self, pool: str, priority: int) -> None:
        """Move the pool's `default` queue out of the way when it holds the wanted priority.

        Taking a held priority shifts the holder and the queues after it down by one; with the `default`
        queue at 1 (where a new pool puts it), queues declared 1, 2, ... and created in parallel would push
        each other to priorities nobody declared. wp does the same for an undeclared `default` queue: it
        keeps the first free priority after the declared ones."""
        queues = self.ctx.store.list_work_queues(pool)
        holder = next((q for q in queues if q.priority == priority), None)
        if holder is None or holder.name != DEFAULT_QUEUE:
            return
        highest = max((q.priority or 0 for q in queues), default=0)
        self.ctx.store.update_work_queue(pool, DEFAULT_QUEUE, priority=max(highest, priority) + 1)

    def update(self, ident: tuple[str, ...], obj: Any, changed: tuple[str, ...]) -> None:
        fields = {name: getattr(obj, name) for name in changed if name not in ("work_pool", "name")}
        if fields:
            self.ctx.store.update_work_queue(ident[0], ident[1], **fields)

    def delete(self, ident: tuple[str, ...]) -> None:
        if ident[1] == DEFAULT_QUEUE:
            return  # lives and dies with its pool
        self.ctx.store.delete_work_queue(ident[0], ident[1])
