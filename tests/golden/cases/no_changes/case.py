"""The store matches the config (template keys in another order, deployment queue spelled out vs implied)."""

from livestate import PROJECT, live, snapshot

from reconciler.model import BaseJobTemplate, Deployment, DesiredState, WorkPool

LIVE_POOL = WorkPool(
    name="local",
    base_job_template=BaseJobTemplate(job_configuration={"command": "{{ command }}", "env": {}}),
)
WANT_POOL = WorkPool(
    name="local",
    base_job_template=BaseJobTemplate(job_configuration={"env": {}, "command": "{{ command }}"}),
)
DEP = Deployment(flow="hello", name="dev", entrypoint="flows/hello.py:hello")
DESIRED = DesiredState(project=PROJECT, pools=(WANT_POOL,), deployments=(DEP,))
SNAPSHOT = snapshot(
    live(LIVE_POOL),
    live(DEP.model_copy(update={"work_pool": "local", "work_queue": "default"})),
    default_pool="local",
)
