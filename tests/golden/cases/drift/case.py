"""Someone paused a pool and raised a queue's limit by hand. The pool ignores `paused`, so only the queue
shows as drift; the config is unchanged, so the plan puts the queue back."""

from livestate import PROJECT, live, snapshot

from reconciler.model import BaseJobTemplate, DesiredState, Lifecycle, WorkPool, WorkQueue, attributes

POOL = WorkPool(name="k8s-prod", type="kubernetes", base_job_template=BaseJobTemplate())
QUEUE = WorkQueue(work_pool="k8s-prod", name="high", priority=1, concurrency_limit=3)

DESIRED = DesiredState(
    project=PROJECT,
    pools=(POOL,),
    queues=(QUEUE,),
    lifecycle={"work_pool.k8s-prod": Lifecycle(ignore_changes=("paused",))},
)
SNAPSHOT = snapshot(
    live(POOL.model_copy(update={"paused": True}), applied=attributes(POOL)),
    live(QUEUE.model_copy(update={"concurrency_limit": 10}), applied=attributes(QUEUE)),
    live(WorkQueue(work_pool="k8s-prod", name="default", priority=2)),
)
