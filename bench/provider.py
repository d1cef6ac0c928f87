"""Print the start → GetProviderSchema latency of terraform-provider-wp (median of 10 process starts),
plaintext
and TLS, as Terraform launches it. Terraform starts a fresh provider per phase, so this is paid 3-4
times a plan."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from typing import Any

# This file is named provider.py: drop its own folder from the path so `provider` means the package.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import grpc  # noqa: E402

from provider._proto import goplugin_pb2, goplugin_pb2_grpc  # noqa: E402
from provider._proto import tfplugin6_pb2 as pb  # noqa: E402
from provider._proto import tfplugin6_pb2_grpc as pb_grpc  # noqa: E402
from provider.server import MAGIC_COOKIE_VALUE, server_certificate  # noqa: E402

RUNS = 10
HANDSHAKES: list[float] = []


def one_start(tls: bool) -> float:
    exe = shutil.which("terraform-provider-wp")
    cmd = [exe] if exe else [sys.executable, "-m", "provider.server"]
    env = dict(os.environ, TF_PLUGIN_MAGIC_COOKIE=MAGIC_COOKIE_VALUE, PLUGIN_PROTOCOL_VERSIONS="5,6")
    client_key = client_cert = b""
    if tls:
        client_key, client_cert, _ = server_certificate()
        env["PLUGIN_CLIENT_CERT"] = client_cert.decode()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    parts = proc.stdout.readline().strip().split("|")
    HANDSHAKES.append(time.perf_counter() - start)
    if tls:
        import base64

        from cryptography import x509
        from cryptography.hazmat.primitives.serialization import Encoding

        der = base64.b64decode(parts[5] + "=" * (-len(parts[5]) % 4))
        root = x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM)
        creds = grpc.ssl_channel_credentials(root, client_key, client_cert)
        channel = grpc.secure_channel(
            parts[3], creds, options=[("grpc.ssl_target_name_override", "localhost")]
        )
    else:
        channel = grpc.insecure_channel(parts[3])
    provider: Any = pb_grpc.ProviderStub(channel)  # type: ignore[no-untyped-call]
    provider.GetProviderSchema(pb.GetProviderSchema.Request(), timeout=30)
    elapsed = time.perf_counter() - start
    controller: Any = goplugin_pb2_grpc.GRPCControllerStub(channel)  # type: ignore[no-untyped-call]
    controller.Shutdown(goplugin_pb2.Empty(), timeout=10)
    channel.close()
    proc.wait(timeout=10)
    return elapsed


def main() -> None:
    for tls in (False, True):
        times = [one_start(tls) for _ in range(RUNS)]
        mode = "tls" if tls else "plaintext"
        print(
            f"start -> GetProviderSchema ({mode}): median {statistics.median(times) * 1000:.0f} ms, "
            f"max {max(times) * 1000:.0f} ms over {RUNS} starts"
        )


if __name__ == "__main__":
    main()
