"""Routes of deployments: read, list, partial update, delete.

Owns `/deployments` and `/deployments/{flow}/{name}`. Deployments are created only by apply (`POST
/apply`), as in the Store protocol. Must never implement a domain rule; it only translates.
"""

from __future__ import annotations

from fastapi import APIRouter

from reconciler.api.dependencies import StoreDep
from reconciler.api.shapes import DeploymentUpdate, set_fields
from reconciler.model import Deployment

router = APIRouter(tags=["deployments"])


@router.get("/deployments", response_model=list[Deployment])
def list_deployments(store: StoreDep, work_pool: str | None = None) -> list[Deployment]:
    return store.list_deployments(work_pool)


@router.get("/deployments/{flow}/{name}", response_model=Deployment)
def get_deployment(flow: str, name: str, store: StoreDep) -> Deployment:
    return store.get_deployment(flow, name)


@router.patch("/deployments/{flow}/{name}", response_model=Deployment)
def update_deployment(flow: str, name: str, body: DeploymentUpdate, store: StoreDep) -> Deployment:
    return store.update_deployment(flow, name, **set_fields(body))


@router.delete("/deployments/{flow}/{name}", status_code=204)
def delete_deployment(flow: str, name: str, store: StoreDep) -> None:
    store.delete_deployment(flow, name)
