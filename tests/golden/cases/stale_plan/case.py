"""A plan is made, then someone edits the pool by hand and deletes a queue the plan updates: stale."""

from dataclasses import replace

from livestate import PROJECT, live, snapshot

from reconciler.model import BaseJobTemplate, DesiredState, WorkPool, WorkQueue
from reconciler.store.base import Snapshot

POOL = WorkPool(name="k8s-prod", type="kubernetes", concurrency_limit=10, base_job_template=BaseJobTemplate())
QUEUE = WorkQueue(work_pool="k8s-prod", name="high", priority=1)
DESIRED = DesiredState(
    project=PROJECT,
    pools=(POOL.model_copy(update={"concurrency_limit": 20}),),
    queues=(QUEUE.model_copy(update={"concurrency_limit": 2}),),
)
SNAPSHOT = snapshot(live(POOL), live(QUEUE))


def after_plan(before: Snapshot) -> Snapshot:
    hand_edited = live(POOL.model_copy(update={"description": "edited by hand"}))
    objects = {k: v for k, v in before.objects.items() if k != QUEUE.key}
    return replace(before, objects={**objects, hand_edited.key: hand_edited})
