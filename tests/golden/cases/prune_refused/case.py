"""prune is on, but the pool no longer declared was applied with `protect: true` (the store remembers it):
the plan is refused."""

from livestate import PROJECT, live, snapshot

from reconciler.model import BaseJobTemplate, DesiredState, WorkPool

DESIRED = DesiredState(
    project=PROJECT,
    pools=tuple(WorkPool(name=n, base_job_template=BaseJobTemplate()) for n in ("a", "b", "c")),
    prune=True,
)
SNAPSHOT = snapshot(
    *(live(p) for p in DESIRED.pools),
    live(WorkPool(name="legacy", base_job_template=BaseJobTemplate()), protected=True),
)
