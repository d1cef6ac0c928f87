"""Routes of deployments: read, list, partial update, delete.

Owns `/deployments` and `/deployments/{flow}/{name}`. Deployments are created only by apply (`POST
/apply`), as in the Store protocol. Must never implement a domain rule; it only translates.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from reconciler.api.dependencies import StoreDep
from reconciler.api.masking import SecretPatterns, restored_fields, shown_deployment
from reconciler.api.object_shapes import DeploymentUpdate, set_fields
from reconciler.model import Deployment

router = APIRouter(tags=["deployments"])


# Every answer seals secret parameters and job variables (reconciler.api.masking); a worker reads them clear
# through GET /flow_runs/{id}/inputs.
@router.get("/deployments", response_model=list[Deployment])
def list_deployments(
    store: StoreDep, patterns: SecretPatterns, work_pool: str | None = None
) -> list[dict[str, Any]]:
    """Every deployment (of one pool with `work_pool`). Secret parameters, job variables and pull-step
    settings are masked as `(sensitive sha256:<digest>)`: a client holding the clear value can compare it."""
    return [shown_deployment(d, patterns) for d in store.list_deployments(work_pool)]


@router.get("/deployments/{flow}/{name}", response_model=Deployment)
def get_deployment(flow: str, name: str, store: StoreDep, patterns: SecretPatterns) -> dict[str, Any]:
    """One deployment, secrets masked as `(sensitive sha256:<digest>)`."""
    return shown_deployment(store.get_deployment(flow, name), patterns)


@router.patch("/deployments/{flow}/{name}", response_model=Deployment)
def update_deployment(
    flow: str, name: str, body: DeploymentUpdate, store: StoreDep, patterns: SecretPatterns
) -> dict[str, Any]:
    """Change some fields. A masked secret sent back keeps the stored value; a mask matching nothing is a 422."""
    fields = set_fields(body)
    if {"parameters", "job_variables"} & fields.keys():
        fields = restored_fields(fields, store.get_deployment(flow, name))
    return shown_deployment(store.update_deployment(flow, name, **fields), patterns)


@router.delete("/deployments/{flow}/{name}", status_code=204)
def delete_deployment(flow: str, name: str, store: StoreDep) -> None:
    store.delete_deployment(flow, name)
