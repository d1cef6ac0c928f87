"""What a worker submits for a run, computed by the functions the worker itself calls, so `wp explain` shows it.

Owns the step from a pool, a deployment and a run to the job configuration an executor starts (the pool's
template rendered with the deployment's and the run's job variables, the worker's environment for `{{ $VAR }}`
and the `flow_run`/`deployment`/`work_pool`/`worker` context; a job with no name takes the run's), and the
preview of it before any run exists: a placeholder run (`PREVIEW_RUN_ID`, `PREVIEW_RUN_NAME`, the deployment's
parameters) fed through the same functions, with the batch/v1 Job of a kubernetes pool built by the executor's
own `kubernetes_manifest.job_body`. In a preview, the runner's code (a long base64 text) is shown by its size.

Must never touch the store or a cluster: callers pass the objects they read.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from reconciler.model import DEFAULT_QUEUE, BaseJobTemplate, Deployment, FlowRun, PoolType, WorkPool

PREVIEW_RUN_ID = "00000000-0000-0000-0000-000000000000"
PREVIEW_RUN_NAME = "flow-run-name"  # a run's name is chosen when it is made: the Job's name starts with it
PREVIEW_WORKER = "worker-name"


def job_configuration(
    pool: WorkPool,
    deployment: Deployment,
    run: FlowRun,
    worker_name: str,
    env: Mapping[str, str],
) -> dict[str, Any]:
    """The job configuration a worker named `worker_name`, with environment `env`, starts for `run`."""
    from reconciler.engine.template import render_job_configuration

    template = pool.base_job_template or BaseJobTemplate()
    context = {
        "flow_run": {"id": run.id, "name": run.name, "parameters": run.parameters},
        "deployment": {
            "flow": deployment.flow,
            "name": deployment.name,
            "entrypoint": deployment.entrypoint,
        },
        "work_pool": {"name": pool.name, "type": pool.type},
        "worker": {"name": worker_name},
    }
    rendered = render_job_configuration(
        template, deployment.job_variables, run.job_variables, env=env, context=context
    )
    configuration = dict(rendered)
    # a job with no name takes the run's, as Prefect's do
    configuration["name"] = configuration.get("name") or run.name
    return configuration


def preview_run(pool: WorkPool, deployment: Deployment) -> FlowRun:
    """A run of `deployment` as the scheduler would make it, with placeholder id and name."""
    return FlowRun(
        id=PREVIEW_RUN_ID,
        name=PREVIEW_RUN_NAME,
        flow=deployment.flow,
        deployment=f"{deployment.flow}/{deployment.name}",
        work_pool=pool.name,
        work_queue=deployment.work_queue or DEFAULT_QUEUE,
        state="SCHEDULED",
        expected_start_time=datetime(2000, 1, 1, tzinfo=UTC),
        parameters=dict(deployment.parameters),
    )


def preview_deployment(pool: WorkPool) -> Deployment:
    """A deployment with no job variables of its own on `pool`: what the pool alone gives a run."""
    return Deployment(flow="flow", name="deployment", entrypoint="flows/flow.py:flow", work_pool=pool.name)


def preview(pool: WorkPool, deployment: Deployment | None, env: Mapping[str, str]) -> dict[str, Any]:
    """The job configuration a worker with environment `env` would start for a scheduled run of `deployment`
    (None: of a deployment that sets no job variables); for a kubernetes pool, `job_manifest` is the exact Job
    body the executor submits. ExecutorError when the configuration cannot become a Job."""
    from reconciler.runtime.executors.base import Job

    deployment = deployment or preview_deployment(pool)
    run = preview_run(pool, deployment)
    configuration = job_configuration(pool, deployment, run, PREVIEW_WORKER, env)
    if pool.type == PoolType.KUBERNETES:
        from reconciler.runtime.executors.container import ENV_RUNNER_CODE
        from reconciler.runtime.executors.kubernetes_manifest import job_body

        body = job_body(Job(run, deployment, configuration, env, PREVIEW_WORKER))
        for container in body["spec"]["template"]["spec"]["containers"]:
            for entry in container.get("env") or []:
                if entry.get("name") == ENV_RUNNER_CODE:
                    entry["value"] = f"(wp's container runner, {len(entry['value'])} characters)"
        configuration["job_manifest"] = body
    return configuration
