"""Changes in place: a pool's limit and template, a queue's priority, a deployment's variables and tags,
a schedule's cron; a queue made by hand is adopted; the undeclared `default` queue is left alone."""

from livestate import PROJECT, live, snapshot

from reconciler.model import BaseJobTemplate, Deployment, DesiredState, Schedule, WorkPool, WorkQueue

OLD_TEMPLATE = BaseJobTemplate(
    job_configuration={"image": "{{ image }}"},
    variables={"type": "object", "properties": {"image": {"type": "string", "default": "python:3.11"}}},
)
NEW_TEMPLATE = BaseJobTemplate(
    # same content, keys in another order, except the new default image
    variables={"properties": {"image": {"default": "python:3.12", "type": "string"}}, "type": "object"},
    job_configuration={"image": "{{ image }}"},
)
OLD_POOL = WorkPool(name="k8s-prod", type="kubernetes", concurrency_limit=10, base_job_template=OLD_TEMPLATE)
NEW_POOL = OLD_POOL.model_copy(update={"concurrency_limit": 20, "base_job_template": NEW_TEMPLATE})
OLD_DEP = Deployment(
    flow="etl",
    name="nightly",
    entrypoint="flows/etl.py:etl",
    work_pool="k8s-prod",
    job_variables={"env": {"LOG_LEVEL": "info", "DB_PASSWORD": "old"}},
    schedules=(Schedule(slug="nightly", cron="0 2 * * *", timezone="Europe/Berlin"),),
    tags=("etl",),
)
NEW_DEP = OLD_DEP.model_copy(
    update={
        "job_variables": {"env": {"LOG_LEVEL": "debug", "DB_PASSWORD": "new"}, "cpu_request": "2"},
        "schedules": (Schedule(slug="nightly", cron="0 3 * * *", timezone="Europe/Berlin"),),
        "tags": ("etl", "nightly"),
    }
)
HAND_QUEUE = WorkQueue(work_pool="k8s-prod", name="adhoc", priority=7)

DESIRED = DesiredState(
    project=PROJECT,
    pools=(NEW_POOL,),
    queues=(WorkQueue(work_pool="k8s-prod", name="high", priority=2), HAND_QUEUE),
    deployments=(NEW_DEP,),
)
SNAPSHOT = snapshot(
    live(OLD_POOL),
    live(WorkQueue(work_pool="k8s-prod", name="default", priority=9, concurrency_limit=3)),
    live(WorkQueue(work_pool="k8s-prod", name="high", priority=5)),
    live(HAND_QUEUE, owner=None),
    live(OLD_DEP.model_copy(update={"work_queue": "default"})),
    live(OLD_DEP.schedules[0], deployment=OLD_DEP),
)
