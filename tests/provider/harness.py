"""A subprocess harness that plays Terraform's part: launch terraform-provider-wp as Terraform does
(magic cookie,
PLUGIN_PROTOCOL_VERSIONS, PLUGIN_CLIENT_CERT with a go-plugin style P-521 client certificate), parse the
handshake
line, connect over TLS or plaintext, and call the tfplugin6 RPCs with msgpack DynamicValues."""

from __future__ import annotations

import base64
import datetime as dt
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from provider import codec
from provider._proto import goplugin_pb2, goplugin_pb2_grpc, health_pb2, health_pb2_grpc
from provider._proto import tfplugin6_pb2 as pb
from provider._proto import tfplugin6_pb2_grpc as pb_grpc
from provider.schema import resource_schemas
from provider.server import MAGIC_COOKIE_VALUE


def client_certificate() -> tuple[bytes, bytes]:
    """(key PEM, cert PEM) the way go-plugin's AutoMTLS makes them: ECDSA P-521, CN localhost, CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP521R1())
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
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]),
            critical=False,
        )
        .sign(key, hashes.SHA512())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def provider_command() -> list[str]:
    exe = shutil.which("terraform-provider-wp")
    return [exe] if exe else [sys.executable, "-m", "provider.server"]


def terraform_env(db_url: str, tls: bool) -> tuple[dict[str, str], tuple[bytes, bytes] | None]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WP_", "PLUGIN_", "TF_"))}
    env.update(
        TF_PLUGIN_MAGIC_COOKIE=MAGIC_COOKIE_VALUE,
        PLUGIN_PROTOCOL_VERSIONS="5,6",
        PLUGIN_MIN_PORT="10000",
        PLUGIN_MAX_PORT="25000",
        WP_DATABASE_URL=db_url,
    )
    client = client_certificate() if tls else None
    if client:
        env["PLUGIN_CLIENT_CERT"] = client[1].decode()
    return env, client


@dataclass
class Provider:
    """One running provider process and a gRPC channel to it."""

    proc: subprocess.Popen[str]
    handshake: list[str]
    channel: grpc.Channel

    @property
    def stub(self) -> Any:  # generated stubs are untyped
        return pb_grpc.ProviderStub(self.channel)  # type: ignore[no-untyped-call]

    def health(self) -> int:
        req = health_pb2.HealthCheckRequest(service="plugin")
        stub: Any = health_pb2_grpc.HealthStub(self.channel)  # type: ignore[no-untyped-call]
        return int(stub.Check(req, timeout=5).status)

    def shutdown(self) -> int:
        controller: Any = goplugin_pb2_grpc.GRPCControllerStub(self.channel)  # type: ignore[no-untyped-call]
        controller.Shutdown(goplugin_pb2.Empty(), timeout=5)
        self.channel.close()
        return self.proc.wait(timeout=10)

    # --- RPCs with Python values
    def configure(self, **config: Any) -> list[pb.Diagnostic]:
        full = {"api_url": None, "api_key": None, "project": None, **config}
        resp = self.stub.ConfigureProvider(
            pb.ConfigureProvider.Request(terraform_version="1.11.4", config=dv(full)), timeout=30
        )
        return list(resp.diagnostics)

    def validate(self, type_name: str, config: dict[str, Any]) -> list[pb.Diagnostic]:
        req = pb.ValidateResourceConfig.Request(type_name=type_name, config=dv(obj(type_name, config)))
        return list(self.stub.ValidateResourceConfig(req, timeout=30).diagnostics)

    def plan(
        self,
        type_name: str,
        prior: dict[str, Any] | None,
        config: dict[str, Any] | None,
    ) -> Any:
        cfg = obj(type_name, config) if config is not None else None
        proposed = (
            None if cfg is None else {**(prior or {}), **{k: v for k, v in cfg.items() if v is not None}}
        )
        req = pb.PlanResourceChange.Request(
            type_name=type_name, prior_state=dv(prior), proposed_new_state=dv(proposed), config=dv(cfg)
        )
        return self.stub.PlanResourceChange(req, timeout=30)

    def apply(
        self,
        type_name: str,
        prior: dict[str, Any] | None,
        planned: Any,
        config: dict[str, Any] | None,
    ) -> Any:
        cfg = obj(type_name, config) if config is not None else None
        req = pb.ApplyResourceChange.Request(
            type_name=type_name,
            prior_state=dv(prior),
            planned_state=planned if isinstance(planned, pb.DynamicValue) else dv(planned),
            config=dv(cfg),
        )
        return self.stub.ApplyResourceChange(req, timeout=30)

    def read(self, type_name: str, state: dict[str, Any]) -> Any:
        return self.stub.ReadResource(
            pb.ReadResource.Request(type_name=type_name, current_state=dv(state)), timeout=30
        )


def obj(type_name: str, values: dict[str, Any]) -> dict[str, Any]:
    """A config object as Terraform sends it: every attribute present, null where unset."""
    schema = resource_schemas()[type_name]
    return {a.name: values.get(a.name) for a in schema.attributes}


def dv(value: Any) -> pb.DynamicValue:
    return pb.DynamicValue(msgpack=codec.pack(value))


def val(d: pb.DynamicValue) -> Any:
    return codec.unpack(d.msgpack)


def launch(db_url: str, tls: bool) -> Provider:
    env, client = terraform_env(db_url, tls)
    proc = subprocess.Popen(provider_command(), env=env, stdout=subprocess.PIPE, stderr=sys.stderr, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    parts = line.split("|")
    assert parts[:3] == ["1", "6", "tcp"] and parts[4] == "grpc", line
    assert parts[3].startswith("127.0.0.1:")
    if client is None:
        assert parts[5] == "", "plaintext mode must advertise no certificate"
        channel = grpc.insecure_channel(parts[3])
    else:
        assert len(parts[5]) > 50
        der = base64.b64decode(parts[5] + "=" * (-len(parts[5]) % 4))
        from cryptography import x509

        server_pem = x509.load_der_x509_certificate(der).public_bytes(
            __import__("cryptography.hazmat.primitives.serialization", fromlist=["Encoding"]).Encoding.PEM
        )
        creds = grpc.ssl_channel_credentials(
            root_certificates=server_pem, private_key=client[0], certificate_chain=client[1]
        )
        channel = grpc.secure_channel(
            parts[3], creds, options=[("grpc.ssl_target_name_override", "localhost")]
        )
    return Provider(proc, parts, channel)


@pytest.fixture(params=["tls", "plaintext"])
def provider(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Provider]:
    p = launch(f"sqlite:///{tmp_path / 'wp.db'}", request.param == "tls")
    yield p
    if p.proc.poll() is None:
        p.proc.kill()
        p.proc.wait()


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'wp.db'}"
