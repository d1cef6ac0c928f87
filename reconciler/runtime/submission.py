"""What a worker submits for a run, computed by the functions the worker itself calls, so `wp explain` shows it.

Owns the step from a pool, a deployment and a run to the job configuration an executor starts (the pool's
template rendered with the deployment's and the run's job variables, the worker's environment for `{{ $VAR }}`
and the `flow_run`/`deployment`/`work_pool`/`worker` context; a job with no name takes the run's), and the
preview of it before any run exists: a placeholder run (`PREVIEW_RUN_ID`, `PREVIEW_RUN_NAME`, the deployment's
parameters) fed through the same functions, with the batch/v1 Job of a kubernetes pool built by the executor's
own `kubernetes_manifest.job_body`. In a preview, the runner's code (a long base64 text) is shown by its size.
Also where a run's code is (`code_location`, README "Where the code is"): fetched by the pull steps, else in the
image (a container starts in the image's or the template's working directory), else on the worker's machine
(the pool's `working_dir`, else the directory the worker is started in).

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


def code_location(
    pool: WorkPool, deployment: Deployment, configuration: Mapping[str, Any], env: Mapping[str, str]
) -> str:
    """Where the code of a run of `deployment` is, given its job configuration (as `preview` returns it) and
    the worker's environment."""
    image, workdir = _container(pool, configuration, env)
    if deployment.pull_steps:
        steps = "; ".join(_step_text(step) for step in deployment.pull_steps)
        into = f" into the image {image}" if image else ""
        return f"fetched by the pull steps{into}: {steps}"
    if image is not None:
        at = f"at {workdir}" if workdir else "at its working directory"
        return f"in the image {image}, {at}: the deployment has no pull steps"
    working_dir = configuration.get("working_dir")
    if working_dir:
        return f"in {working_dir} (the pool's working_dir): the deployment has no pull steps"
    return "in the directory the worker is started in: the deployment has no pull steps and the pool no working_dir"


def _container(
    pool: WorkPool, configuration: Mapping[str, Any], env: Mapping[str, str]
) -> tuple[str | None, str | None]:
    """The image and working directory a container run gets; (None, None) when the run is no container."""
    if pool.type == PoolType.KUBERNETES:
        try:
            container = configuration["job_manifest"]["spec"]["template"]["spec"]["containers"][0]
        except (KeyError, IndexError, TypeError):
            return None, None
        return str(container.get("image")), container.get("workingDir")
    if pool.type == PoolType.DOCKER:
        from reconciler.runtime.executors.container import default_image

        image = configuration.get("image")
        return str(image) if image else default_image(env), configuration.get("working_dir")
    return None, None


def _step_text(step: Mapping[str, Any]) -> str:
    for name, args in step.items():
        short = str(name).rpartition(".")[2]
        if not isinstance(args, Mapping):
            return short
        shown = args.get("repository") or args.get("directory") or args.get("script") or ""
        at = args.get("commit_sha") or args.get("branch")
        return " ".join(str(part) for part in (short, shown, f"at {at}" if at else "") if part)
    return "(empty step)"
