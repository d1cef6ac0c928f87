"""prune is on: a deployment (with its schedule) and a queue are no longer declared and are deleted; the queue
has runs in flight. Objects made by hand or by another project are never touched."""

from livestate import PROJECT, live, snapshot

from reconciler.model import BaseJobTemplate, Deployment, DesiredState, Schedule, WorkPool, WorkQueue

POOL = WorkPool(name="k8s-prod", type="kubernetes", base_job_template=BaseJobTemplate())
KEPT = Deployment(flow="etl", name="nightly", entrypoint="flows/etl.py:etl", work_pool="k8s-prod")
GONE = Deployment(
    flow="etl",
    name="hourly",
    entrypoint="flows/etl.py:etl",
    work_pool="k8s-prod",
    schedules=(Schedule(slug="hourly", interval=3600, anchor_date="2024-01-01T00:00:00Z"),),
)
QUEUES = [
    WorkQueue(work_pool="k8s-prod", name=n, priority=p) for n, p in (("high", 1), ("low", 2), ("default", 3))
]

DESIRED = DesiredState(project=PROJECT, pools=(POOL,), queues=(QUEUES[0],), deployments=(KEPT,), prune=True)
SNAPSHOT = snapshot(
    live(POOL),
    *(live(q) for q in QUEUES),
    live(KEPT),
    live(GONE),
    live(GONE.schedules[0], deployment=GONE),
    live(WorkQueue(work_pool="k8s-prod", name="by-hand", priority=4), owner=None),
    live(Deployment(flow="ml", name="train", entrypoint="t.py:train", work_pool="k8s-prod"), owner="ml-team"),
)
OPTIONS = {"runs_in_flight": {"work_queue.k8s-prod/low": {"RUNNING": 2, "PENDING": 1}}}
