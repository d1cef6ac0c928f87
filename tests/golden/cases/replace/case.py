"""A pool changes type: it cannot be updated in place and must be replaced."""

from livestate import PROJECT, live, snapshot

from reconciler.model import BaseJobTemplate, DesiredState, WorkPool, WorkQueue

TEMPLATE = BaseJobTemplate()
DESIRED = DesiredState(
    project=PROJECT,
    pools=(WorkPool(name="batch", type="docker", description="Batch jobs", base_job_template=TEMPLATE),),
)
SNAPSHOT = snapshot(
    live(WorkPool(name="batch", type="process", description="Batch jobs", base_job_template=TEMPLATE)),
    live(WorkQueue(work_pool="batch", name="default", priority=1)),
)
