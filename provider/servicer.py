"""The tfplugin6 Provider service: each RPC decodes its DynamicValues, asks a resource, encodes the answer.

Owns the mapping of RPCs to resource calls, provider configuration (api_url, api_key, project, with the WP_*
environment as fallback) and the translation of every failure into a diagnostic (never a gRPC error or a
traceback in Terraform's face). Must never plan or compare values itself (resources do).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import grpc

from provider import codec
from provider._proto import tfplugin6_pb2 as pb
from provider._proto import tfplugin6_pb2_grpc as pb_grpc
from provider.schema import data_source_schemas, provider_schema, resource_schemas, to_pb
from reconciler.diagnostics import Diagnostic, error
from reconciler.errors import NotFoundError, WpError

log = logging.getLogger("terraform-provider-wp")

DEFAULT_PROJECT = "terraform"

R = TypeVar("R")


class Failure(Exception):
    """A request that must end with these diagnostics."""

    def __init__(self, *diagnostics: Diagnostic) -> None:
        super().__init__(diagnostics[0].summary if diagnostics else "failure")
        self.diagnostics = diagnostics


def store_env(config: Mapping[str, Any] | None, env: Mapping[str, str]) -> dict[str, str]:
    """The environment `open_store` reads: the provider config's api_url / api_key win over WP_API_URL/KEY."""
    out = dict(env)
    if config:
        if config.get("api_url"):
            out["WP_API_URL"] = str(config["api_url"])
        if config.get("api_key"):
            out["WP_API_KEY"] = str(config["api_key"])
    return out


def _diagnostics_of(exc: BaseException) -> list[Diagnostic]:
    if isinstance(exc, Failure):
        return list(exc.diagnostics)
    if isinstance(exc, codec.DecodeError):
        return [error("Terraform sent a value the provider cannot read", str(exc))]
    if isinstance(exc, WpError):
        path = tuple(getattr(exc, "path", ()) or ())
        return [error(exc.message, type(exc).__name__, path=path)]
    if isinstance(exc, ValueError):
        return [error(str(exc))]
    log.exception("internal error")
    return [error("Internal error in terraform-provider-wp", f"{type(exc).__name__}: {exc}")]


class ProviderServicer(pb_grpc.ProviderServicer):
    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self._env = dict(os.environ if env is None else env)
        self._ctx: Any = None  # resources.base.Context, made by ConfigureProvider
        self._resources: dict[str, Any] = {}
        self.stopping = threading.Event()

    # ------------------------------------------------------------------ helpers
    def _guard(self, make: Callable[[], R], fail: Callable[[list[pb.Diagnostic]], R]) -> R:
        try:
            return make()
        except Exception as exc:  # every failure becomes a diagnostic, never a gRPC error
            return fail(codec.diagnostics(_diagnostics_of(exc)))

    def _resource(self, type_name: str) -> Any:
        if type_name not in resource_schemas():
            known = ", ".join(sorted(resource_schemas()))
            raise Failure(error(f"Unknown resource type {type_name!r}", f"This provider has {known}."))
        if self._ctx is None:
            self._configure({})
        return self._resources[type_name]

    def _configure(self, config: Mapping[str, Any]) -> None:
        from provider.resources import make_resources
        from provider.resources.base import Context

        env = store_env(config, self._env)

        def open_store() -> Any:
            from reconciler.store.open import open_store as open_

            return open_(env)

        project = config.get("project") or DEFAULT_PROJECT
        self._ctx = Context(project=str(project), open_store=open_store)
        self._resources = make_resources(self._ctx)

    # ------------------------------------------------------------------ schema and configuration
    def GetMetadata(self, request: Any, context: Any) -> pb.GetMetadata.Response:
        return pb.GetMetadata.Response(
            resources=[pb.GetMetadata.ResourceMetadata(type_name=n) for n in resource_schemas()],
            data_sources=[pb.GetMetadata.DataSourceMetadata(type_name=n) for n in data_source_schemas()],
        )

    def GetProviderSchema(self, request: Any, context: Any) -> pb.GetProviderSchema.Response:
        return pb.GetProviderSchema.Response(
            provider=to_pb(provider_schema()),
            resource_schemas={n: to_pb(s) for n, s in resource_schemas().items()},
            data_source_schemas={n: to_pb(s) for n, s in data_source_schemas().items()},
        )

    def ValidateProviderConfig(self, request: Any, context: Any) -> pb.ValidateProviderConfig.Response:
        def run() -> pb.ValidateProviderConfig.Response:
            config = codec.decode(request.config, provider_schema().cty_type) or {}
            url = config.get("api_url")
            diags = []
            if isinstance(url, str) and not url.startswith(("http://", "https://")):
                diags.append(
                    error("api_url must be an http:// or https:// URL", f"got {url!r}", path=("api_url",))
                )
            return pb.ValidateProviderConfig.Response(diagnostics=codec.diagnostics(diags))

        return self._guard(run, lambda d: pb.ValidateProviderConfig.Response(diagnostics=d))

    def ConfigureProvider(self, request: Any, context: Any) -> pb.ConfigureProvider.Response:
        def run() -> pb.ConfigureProvider.Response:
            config = codec.decode(request.config, provider_schema().cty_type) or {}
            if not codec.is_wholly_known(config):
                raise Failure(error("The provider configuration must be known before plan", "", path=()))
            self._configure(config)
            return pb.ConfigureProvider.Response()

        return self._guard(run, lambda d: pb.ConfigureProvider.Response(diagnostics=d))

    # ------------------------------------------------------------------ managed resources
    def ValidateResourceConfig(self, request: Any, context: Any) -> pb.ValidateResourceConfig.Response:
        def run() -> pb.ValidateResourceConfig.Response:
            res = self._resource(request.type_name)
            config = codec.decode(request.config, res.schema.cty_type) or {}
            return pb.ValidateResourceConfig.Response(diagnostics=codec.diagnostics(res.validate(config)))

        return self._guard(run, lambda d: pb.ValidateResourceConfig.Response(diagnostics=d))

    def UpgradeResourceState(self, request: Any, context: Any) -> pb.UpgradeResourceState.Response:
        def run() -> pb.UpgradeResourceState.Response:
            res = self._resource(request.type_name)
            if not request.raw_state.json:
                raise Failure(error("Legacy flatmap state is not supported", "Re-import the resource."))
            raw = json.loads(request.raw_state.json)
            upgraded = res.upgrade(raw)
            return pb.UpgradeResourceState.Response(
                upgraded_state=codec.encode(upgraded, res.schema.cty_type)
            )

        return self._guard(run, lambda d: pb.UpgradeResourceState.Response(diagnostics=d))

    def ReadResource(self, request: Any, context: Any) -> pb.ReadResource.Response:
        def run() -> pb.ReadResource.Response:
            res = self._resource(request.type_name)
            state = codec.decode(request.current_state, res.schema.cty_type)
            new = res.read(state) if state is not None else None
            return pb.ReadResource.Response(
                new_state=codec.encode(new, res.schema.cty_type), private=request.private
            )

        return self._guard(run, lambda d: pb.ReadResource.Response(diagnostics=d))

    def PlanResourceChange(self, request: Any, context: Any) -> pb.PlanResourceChange.Response:
        def run() -> pb.PlanResourceChange.Response:
            res = self._resource(request.type_name)
            ctype = res.schema.cty_type
            prior = codec.decode(request.prior_state, ctype)
            proposed = codec.decode(request.proposed_new_state, ctype)
            config = codec.decode(request.config, ctype) if proposed is not None else None
            result = res.plan(prior, config)
            return pb.PlanResourceChange.Response(
                planned_state=codec.encode(result.planned, ctype),
                requires_replace=[codec.attribute_path(p) for p in result.requires_replace],
                planned_private=request.prior_private,
                diagnostics=codec.diagnostics(result.diagnostics),
            )

        return self._guard(run, lambda d: pb.PlanResourceChange.Response(diagnostics=d))

    def ApplyResourceChange(self, request: Any, context: Any) -> pb.ApplyResourceChange.Response:
        def run() -> pb.ApplyResourceChange.Response:
            res = self._resource(request.type_name)
            ctype = res.schema.cty_type
            prior = codec.decode(request.prior_state, ctype)
            planned = codec.decode(request.planned_state, ctype)
            new = res.apply(prior, planned)
            return pb.ApplyResourceChange.Response(
                new_state=codec.encode(new, ctype), private=request.planned_private
            )

        return self._guard(run, lambda d: pb.ApplyResourceChange.Response(diagnostics=d))

    def ImportResourceState(self, request: Any, context: Any) -> pb.ImportResourceState.Response:
        def run() -> pb.ImportResourceState.Response:
            res = self._resource(request.type_name)
            try:
                state = res.import_state(request.id)
            except NotFoundError as exc:
                raise Failure(
                    error(f"Cannot import {request.type_name} {request.id!r}: not found", exc.message)
                ) from exc
            imported = pb.ImportResourceState.ImportedResource(
                type_name=request.type_name, state=codec.encode(state, res.schema.cty_type)
            )
            return pb.ImportResourceState.Response(imported_resources=[imported])

        return self._guard(run, lambda d: pb.ImportResourceState.Response(diagnostics=d))

    # ------------------------------------------------------------------ data sources
    def ValidateDataResourceConfig(
        self, request: Any, context: Any
    ) -> pb.ValidateDataResourceConfig.Response:
        def run() -> pb.ValidateDataResourceConfig.Response:
            if request.type_name not in data_source_schemas():
                raise Failure(error(f"Unknown data source {request.type_name!r}"))
            return pb.ValidateDataResourceConfig.Response()

        return self._guard(run, lambda d: pb.ValidateDataResourceConfig.Response(diagnostics=d))

    def ReadDataSource(self, request: Any, context: Any) -> pb.ReadDataSource.Response:
        def run() -> pb.ReadDataSource.Response:
            from provider.data_sources import read_data_source

            schema = data_source_schemas().get(request.type_name)
            if schema is None:
                raise Failure(error(f"Unknown data source {request.type_name!r}"))
            config = codec.decode(request.config, schema.cty_type) or {}
            if self._ctx is None:
                self._configure({})
            try:
                state = read_data_source(self._ctx, request.type_name, config)
            except NotFoundError as exc:
                raise Failure(error(exc.message, path=("name",))) from exc
            return pb.ReadDataSource.Response(state=codec.encode(state, schema.cty_type))

        return self._guard(run, lambda d: pb.ReadDataSource.Response(diagnostics=d))

    # ------------------------------------------------------------------ lifecycle
    def StopProvider(self, request: Any, context: Any) -> pb.StopProvider.Response:
        # Calls are short store transactions; we let them finish and refuse nothing else.
        self.stopping.set()
        return pb.StopProvider.Response()


def add_to_server(servicer: ProviderServicer, server: grpc.Server) -> None:
    pb_grpc.add_ProviderServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
