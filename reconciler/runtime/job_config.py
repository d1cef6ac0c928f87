"""A run's job configuration: what the worker hands its executor to start.

Owns the context a pool's base job template is rendered with (`flow_run`, `deployment`, `work_pool`, `worker`)
and the run's job configuration: the pool's template over the deployment's job variables (read at submission,
so edits reach runs already scheduled) and the run's own, with the worker's environment for `{{ $VAR }}`.
Must never call the store or start anything: the worker reads the pool and deployment and passes them in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.model import BaseJobTemplate, Deployment, FlowRun, WorkPool


def job_configuration(
    pool: WorkPool, deployment: Deployment, run: FlowRun, *, worker: str, env: Mapping[str, str]
) -> dict[str, Any]:
    from reconciler.engine.template import render_job_configuration

    template = pool.base_job_template or BaseJobTemplate()
    context = {
        "flow_run": {"id": run.id, "name": run.name, "parameters": run.parameters},
        "deployment": {"flow": deployment.flow, "name": deployment.name, "entrypoint": deployment.entrypoint},
        "work_pool": {"name": pool.name, "type": pool.type},
        "worker": {"name": worker},
    }
    rendered = render_job_configuration(
        template, deployment.job_variables, run.job_variables, env=env, context=context
    )
    configuration = dict(rendered)
    # a process with no name takes the run's, as Prefect's do
    configuration["name"] = configuration.get("name") or run.name
    return configuration
