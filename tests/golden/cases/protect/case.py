"""`wp destroy` of a project whose pool is `protect: true`: refused."""

from livestate import PROJECT, live, snapshot

from reconciler.model import BaseJobTemplate, DesiredState, Lifecycle, WorkPool

POOL = WorkPool(name="k8s-prod", type="kubernetes", base_job_template=BaseJobTemplate())
DESIRED = DesiredState(
    project=PROJECT, pools=(POOL,), lifecycle={"work_pool.k8s-prod": Lifecycle(protect=True)}
)
SNAPSHOT = snapshot(live(POOL))
OPTIONS = {"destroy": True}
