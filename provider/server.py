"""terraform-provider-wp: the process Terraform launches (go-plugin handshake, TLS, gRPC lifecycle).

Owns the magic-cookie check, the handshake line `1|6|tcp|127.0.0.1:PORT|grpc|<cert>`, TLS (served only when
Terraform passes PLUGIN_CLIENT_CERT; a fresh self-signed server certificate; the client certificate is never
required, because gRPC cannot ask for go-plugin's P-521 certificate), the health, controller and stdio
services,
and shutdown. Imports stay lazy: Terraform starts a process per phase and every one asks for the schema first.
Must never hold resource logic (servicer and resources do).
"""

from __future__ import annotations

import base64
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator, Mapping
from concurrent import futures
from typing import Any

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


def server_certificate() -> tuple[bytes, bytes, bytes]:
    """A fresh self-signed ECDSA P-256 certificate for `localhost`: (key PEM, cert PEM, cert DER)."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "HashiCorp"),
            x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(seconds=30))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return (
        key_pem,
        cert.public_bytes(serialization.Encoding.PEM),
        cert.public_bytes(serialization.Encoding.DER),
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


def serve(env: Mapping[str, str]) -> int:
    import grpc

    from provider.servicer import ProviderServicer, add_to_server

    options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE),
        ("grpc.max_send_message_length", MAX_MESSAGE),
    ]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), options=options)
    lifecycle = _Lifecycle()
    lifecycle.register(server)
    add_to_server(ProviderServicer(env), server)

    cert_der = None
    creds = None
    if env.get("PLUGIN_CLIENT_CERT"):
        key_pem, cert_pem, cert_der = server_certificate()
        creds = grpc.ssl_server_credentials([(key_pem, cert_pem)], require_client_auth=False)
    port = _bind(server, env, creds)
    server.start()
    sys.stdout.write(handshake_line(port, cert_der) + "\n")
    sys.stdout.flush()

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
    raise SystemExit(serve(env))


if __name__ == "__main__":
    main()
