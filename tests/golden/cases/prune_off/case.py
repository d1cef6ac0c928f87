"""prune is off: objects no longer declared are kept and listed as warnings; nothing else changes."""

from livestate import PROJECT, live, snapshot

from reconciler.model import BaseJobTemplate, Deployment, DesiredState, WorkPool, WorkQueue

POOL = WorkPool(name="k8s-prod", type="kubernetes", base_job_template=BaseJobTemplate())
DESIRED = DesiredState(project=PROJECT, pools=(POOL,))
SNAPSHOT = snapshot(
    live(POOL),
    live(WorkQueue(work_pool="k8s-prod", name="default", priority=2)),
    live(WorkQueue(work_pool="k8s-prod", name="old", priority=1)),
    live(Deployment(flow="etl", name="retired", entrypoint="flows/etl.py:etl", work_pool="k8s-prod")),
)
