"""prune is on, but the pool no longer declared is still marked `protect: true`: the plan is refused."""

from livestate import PROJECT, live, snapshot

from reconciler.model import BaseJobTemplate, DesiredState, Lifecycle, WorkPool

DESIRED = DesiredState(
    project=PROJECT,
    pools=tuple(WorkPool(name=n, base_job_template=BaseJobTemplate()) for n in ("a", "b", "c")),
    lifecycle={"work_pool.legacy": Lifecycle(protect=True)},
    prune=True,
)
SNAPSHOT = snapshot(
    *(live(p) for p in [*DESIRED.pools, WorkPool(name="legacy", base_job_template=BaseJobTemplate())])
)
