"""terraform-provider-wp: the process Terraform launches (go-plugin handshake, TLS, gRPC lifecycle).

Owns the magic-cookie check, the handshake line `1|6|tcp|127.0.0.1:PORT|grpc|<cert>`, TLS (served only when
Terraform passes PLUGIN_CLIENT_CERT; a fresh self-signed server certificate; the client certificate is never
required, because gRPC cannot ask for go-plugin's P-521 certificate), the health, controller and stdio
services, and shutdown.

Start-up is the hot path: Terraform starts 3-4 provider processes per command and each asks for the schema
first. So the handshake line goes out before the servicer (pydantic, reconciler) is imported; a thread
imports it meanwhile, and GetProviderSchema is answered from the serialized response cached on disk
(`$XDG_CACHE_HOME/terraform-provider-wp/`, keyed by a hash of the sources the schema derives from) when the
cache is fresh. Must never hold resource logic (servicer and resources do).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc

from provider.certificate import server_certificate

__all__ = ["MAGIC_COOKIE_VALUE", "LazyProvider", "main", "serve", "server_certificate"]

MAGIC_COOKIE_KEY = "TF_PLUGIN_MAGIC_COOKIE"
MAGIC_COOKIE_VALUE = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2"
PROTOCOL_VERSION = "6"
MAX_MESSAGE = 256 << 20  # what Terraform itself allows

NOT_BY_HAND = (
    "This binary is a plugin. These are not meant to be executed directly.\n"
    "Please execute the program that consumes these plugins, which will\n"
    "load any plugins automatically.\n"
    '(terraform-provider-wp is started by Terraform: declare `wp = { source = "wp-gitops/wp" }` in\n'
    "required_providers. To manage work pools from the shell, use `wp`.)\n"
)


class HandshakeError(Exception):
    """The environment is not one Terraform made."""


def check_environment(env: Mapping[str, str]) -> None:
    if env.get(MAGIC_COOKIE_KEY) != MAGIC_COOKIE_VALUE:
        raise HandshakeError(NOT_BY_HAND)
    versions = [v.strip() for v in env.get("PLUGIN_PROTOCOL_VERSIONS", PROTOCOL_VERSION).split(",")]
    if PROTOCOL_VERSION not in versions:
        raise HandshakeError(
            f"terraform-provider-wp speaks plugin protocol {PROTOCOL_VERSION}, but the client offers "
            f"{', '.join(versions)}. Use Terraform 1.0 or newer (or OpenTofu)."
        )


def handshake_line(port: int, cert_der: bytes | None) -> str:
    # go-plugin reads field 6 as base64 without padding (RawStdEncoding); empty means plaintext.
    cert = base64.b64encode(cert_der).decode().rstrip("=") if cert_der else ""
    return f"1|{PROTOCOL_VERSION}|tcp|127.0.0.1:{port}|grpc|{cert}"


def _bind(server: Any, env: Mapping[str, str], creds: Any) -> int:
    """Bind on loopback within PLUGIN_MIN_PORT..PLUGIN_MAX_PORT when given, else any free port."""
    lo, hi = int(env.get("PLUGIN_MIN_PORT") or 0), int(env.get("PLUGIN_MAX_PORT") or 0)
    candidates = list(range(lo, hi + 1))[:200] if 0 < lo <= hi else []
    for port in [*candidates, 0]:
        addr = f"127.0.0.1:{port}"
        try:
            bound = server.add_secure_port(addr, creds) if creds else server.add_insecure_port(addr)
        except RuntimeError:
            continue
        if bound:
            return int(bound)
    raise OSError("no free port on 127.0.0.1 to serve the provider on")


class _Lifecycle:
    """The go-plugin side services: health, controller (Shutdown) and stdio."""

    def __init__(self) -> None:
        self.shutdown = threading.Event()

    def register(self, server: Any) -> None:
        from provider._proto import goplugin_pb2 as gp
        from provider._proto import goplugin_pb2_grpc as gp_grpc
        from provider._proto import health_pb2 as hp
        from provider._proto import health_pb2_grpc as hp_grpc

        lifecycle = self

        class Health(hp_grpc.HealthServicer):
            def Check(self, request: Any, context: Any) -> Any:
                return hp.HealthCheckResponse(status=hp.HealthCheckResponse.SERVING)

        class Controller(gp_grpc.GRPCControllerServicer):
            def Shutdown(self, request: Any, context: Any) -> Any:
                lifecycle.shutdown.set()
                return gp.Empty()

        class Stdio(gp_grpc.GRPCStdioServicer):
            def StreamStdio(self, request: Any, context: Any) -> Iterator[Any]:
                # We log to stderr, which Terraform captures itself; nothing to stream.
                return iter(())

        hp_grpc.add_HealthServicer_to_server(Health(), server)  # type: ignore[no-untyped-call]
        gp_grpc.add_GRPCControllerServicer_to_server(Controller(), server)  # type: ignore[no-untyped-call]
        gp_grpc.add_GRPCStdioServicer_to_server(Stdio(), server)  # type: ignore[no-untyped-call]


PROVIDER_SERVICE = "/tfplugin6.Provider/"
SCHEMA_METHOD = "/tfplugin6.Provider/GetProviderSchema"
_ROOT = Path(__file__).resolve().parents[1]
# What the schema response is derived from: a change to any of them invalidates the cached response.
SCHEMA_SOURCES = (
    _ROOT / "provider" / "schema.py",
    _ROOT / "provider" / "servicer.py",
    _ROOT / "provider" / "_proto" / "tfplugin6_pb2.py",
    _ROOT / "reconciler" / "model.py",
)


def schema_cache_path(env: Mapping[str, str]) -> Path | None:
    """Where this build's GetProviderSchema response is cached, or None when there is no cache directory."""
    base = env.get("XDG_CACHE_HOME") or (str(Path(env["HOME"]) / ".cache") if env.get("HOME") else "")
    if not base or env.get("WP_PROVIDER_SCHEMA_CACHE") == "off":
        return None
    digest = hashlib.sha256()
    for source in SCHEMA_SOURCES:
        try:
            digest.update(source.read_bytes())
        except OSError:
            return None
    return Path(base) / "terraform-provider-wp" / f"schema-{digest.hexdigest()[:20]}.pb"


class _Capture:
    """Stands in for a grpc.Server to collect the generic handler the generated code registers."""

    handler: Any = None

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        self.handler = handlers[0]

    def add_registered_method_handlers(self, name: str, handlers: Any) -> None:
        pass


class LazyProvider(grpc.GenericRpcHandler):  # type: ignore[misc]
    """The tfplugin6.Provider service, imported on first need; GetProviderSchema from the cache when fresh."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        self._lock = threading.Lock()
        self._handler: Any = None
        self._cache = schema_cache_path(env)
        self._schema: bytes | None = None

    def service(self, handler_call_details: Any) -> Any:
        method = handler_call_details.method
        if not method.startswith(PROVIDER_SERVICE):
            return None
        if method == SCHEMA_METHOD and (cached := self.cached_schema()) is not None:
            # no (de)serializers: the request is ignored and the cached bytes are the response
            return grpc.unary_unary_rpc_method_handler(_constant(cached))
        return self.load().service(handler_call_details)

    def cached_schema(self) -> bytes | None:
        if self._schema is None and self._cache is not None:
            try:
                self._schema = self._cache.read_bytes() or None
            except OSError:
                return None
        return self._schema

    def load(self) -> Any:
        with self._lock:
            if self._handler is None:
                from provider.servicer import ProviderServicer, add_to_server

                servicer = ProviderServicer(self._env)
                capture = _Capture()
                add_to_server(servicer, capture)
                self._handler = capture.handler
                self._write_cache(servicer)
        return self._handler

    def _write_cache(self, servicer: Any) -> None:
        if self._cache is None or self._cache.exists():
            return
        try:
            data = servicer.GetProviderSchema(None, None).SerializeToString()
            self._cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._cache.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, self._cache)  # atomic: a concurrent reader sees all of it or nothing
        except Exception:  # a cache is an optimisation: never fail a request for it
            logging.getLogger("terraform-provider-wp").debug("schema cache not written", exc_info=True)


def _constant(data: bytes) -> Callable[[Any, Any], bytes]:
    return lambda request, context: data


def serve(env: Mapping[str, str]) -> int:
    options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE),
        ("grpc.max_send_message_length", MAX_MESSAGE),
        # gRPC binds with SO_REUSEPORT by default: two providers (Terraform runs several at once) could then
        # share a port in PLUGIN_MIN_PORT..MAX_PORT and Terraform would reach the wrong one.
        ("grpc.so_reuseport", 0),
    ]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), options=options)
    lifecycle = _Lifecycle()
    lifecycle.register(server)
    provider = LazyProvider(env)
    server.add_generic_rpc_handlers((provider,))

    cert_der = None
    creds = None
    if env.get("PLUGIN_CLIENT_CERT"):
        key_pem, cert_pem, cert_der = server_certificate()
        creds = grpc.ssl_server_credentials([(key_pem, cert_pem)], require_client_auth=False)
    port = _bind(server, env, creds)
    server.start()
    sys.stdout.write(handshake_line(port, cert_der) + "\n")
    sys.stdout.flush()
    # import the servicer while Terraform connects; a schema-only process may not need it at all
    threading.Thread(target=provider.load, name="warm-up", daemon=True).start()

    # SIGINT reaches the whole process group on Ctrl-C; Terraform stops us itself (StopProvider, Shutdown).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: lifecycle.shutdown.set())
    lifecycle.shutdown.wait()
    server.stop(grace=2).wait()
    return 0


def main() -> None:
    logging.basicConfig(stream=sys.stderr, level=os.environ.get("WP_PROVIDER_LOG", "WARNING").upper())
    env = dict(os.environ)
    try:
        check_environment(env)
    except HandshakeError as exc:
        sys.stderr.write(str(exc) if str(exc).endswith("\n") else f"{exc}\n")
        raise SystemExit(1) from None
    code = serve(env)
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter finalization: the warm-up thread may still be importing when Terraform shuts a
    # schema-only process down, and finalizing under a running import aborts the process.
    os._exit(code)


if __name__ == "__main__":
    main()
