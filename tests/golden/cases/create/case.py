"""A new project: a pool with two queues and a deployment with a schedule; the store is empty."""

from livestate import PROJECT, snapshot

from reconciler.model import BaseJobTemplate, Deployment, DesiredState, Schedule, WorkPool, WorkQueue

TEMPLATE = BaseJobTemplate(
    job_configuration={"image": "{{ image }}", "env": "{{ env }}"},
    variables={
        "type": "object",
        "properties": {"image": {"type": "string", "default": "python:3.11"}, "env": {"type": "object"}},
    },
)
DESIRED = DesiredState(
    project=PROJECT,
    pools=(WorkPool(name="k8s-prod", type="kubernetes", concurrency_limit=20, base_job_template=TEMPLATE),),
    queues=(
        WorkQueue(work_pool="k8s-prod", name="critical", priority=1, concurrency_limit=1),
        WorkQueue(work_pool="k8s-prod", name="high", priority=5),
    ),
    deployments=(
        Deployment(
            flow="etl",
            name="nightly",
            entrypoint="flows/etl.py:etl",
            work_pool="k8s-prod",
            work_queue="high",
            job_variables={"env": {"LOG_LEVEL": "info", "API_TOKEN": "s3cr3t"}},
            parameters={"full_refresh": False},
            schedules=(Schedule(slug="nightly", cron="0 2 * * *", timezone="Europe/Berlin"),),
            tags=("etl",),
        ),
    ),
)
SNAPSHOT = snapshot()
