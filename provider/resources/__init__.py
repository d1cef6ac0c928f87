"""The provider's managed resources and data sources, by Terraform type name."""

from __future__ import annotations

from provider.resources.base import Context, Resource
from provider.resources.deployment import DeploymentResource
from provider.resources.work_pool import WorkPoolResource
from provider.resources.work_queue import WorkQueueResource

RESOURCE_TYPES: dict[str, type[Resource]] = {
    r.type_name: r for r in (WorkPoolResource, WorkQueueResource, DeploymentResource)
}


def make_resources(ctx: Context) -> dict[str, Resource]:
    return {name: cls(ctx) for name, cls in RESOURCE_TYPES.items()}
