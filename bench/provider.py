"""Print terraform-provider-wp's figures: start → handshake and start → GetProviderSchema latency (median of
10 process starts, plaintext and TLS, with and without the cached schema response), as Terraform launches it
(Terraform starts a fresh provider per phase, 3-4 per command); then the wall time of `terraform init`,
`apply` and `plan` for 100 resources through the real CLI and a filesystem mirror (skipped without
`terraform`). Target: GetProviderSchema answered within 0.4 s of the process start."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# This file is named provider.py: drop its own folder from the path so `provider` means the package.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import grpc  # noqa: E402

from provider._proto import goplugin_pb2, goplugin_pb2_grpc  # noqa: E402
from provider._proto import tfplugin6_pb2 as pb  # noqa: E402
from provider._proto import tfplugin6_pb2_grpc as pb_grpc  # noqa: E402
from provider.install import mirror_cli_config, provider_command, write_mirror  # noqa: E402
from provider.server import MAGIC_COOKIE_VALUE, server_certificate  # noqa: E402

RUNS = 10
POOLS, QUEUES_PER_POOL, DEPLOYMENTS = 30, 2, 10  # 30 + 60 + 10 = 100 resources


def _channel(parts: list[str], client_key: bytes, client_cert: bytes) -> grpc.Channel:
    if not client_cert:
        return grpc.insecure_channel(parts[3])
    import base64

    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    der = base64.b64decode(parts[5] + "=" * (-len(parts[5]) % 4))
    root = x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM)
    creds = grpc.ssl_channel_credentials(root, client_key, client_cert)
    return grpc.secure_channel(parts[3], creds, options=[("grpc.ssl_target_name_override", "localhost")])


def one_start(tls: bool, cache: bool) -> tuple[float, float]:
    """(seconds to the handshake line, seconds to the GetProviderSchema answer)."""
    env = dict(os.environ, TF_PLUGIN_MAGIC_COOKIE=MAGIC_COOKIE_VALUE, PLUGIN_PROTOCOL_VERSIONS="5,6")
    if not cache:
        env["WP_PROVIDER_SCHEMA_CACHE"] = "off"
    client_key = client_cert = b""
    if tls:
        client_key, client_cert, _ = server_certificate()
        env["PLUGIN_CLIENT_CERT"] = client_cert.decode()
    start = time.perf_counter()
    proc = subprocess.Popen(provider_command(), env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    parts = proc.stdout.readline().strip().split("|")
    handshake = time.perf_counter() - start
    channel = _channel(parts, client_key, client_cert)
    provider: Any = pb_grpc.ProviderStub(channel)  # type: ignore[no-untyped-call]
    provider.GetProviderSchema(pb.GetProviderSchema.Request(), timeout=30)
    elapsed = time.perf_counter() - start
    controller: Any = goplugin_pb2_grpc.GRPCControllerStub(channel)  # type: ignore[no-untyped-call]
    controller.Shutdown(goplugin_pb2.Empty(), timeout=10)
    channel.close()
    proc.wait(timeout=10)
    return handshake, elapsed


def start_latency() -> None:
    one_start(False, True)  # fills the schema cache
    for cache in (True, False):
        for tls in (False, True):
            runs = [one_start(tls, cache) for _ in range(RUNS)]
            hand = [h for h, _ in runs]
            schema = [s for _, s in runs]
            print(
                f"{'tls' if tls else 'plaintext':9} cache={'on ' if cache else 'off'}: "
                f"handshake median {statistics.median(hand) * 1000:.0f} ms; "
                f"GetProviderSchema median {statistics.median(schema) * 1000:.0f} ms, "
                f"max {max(schema) * 1000:.0f} ms over {RUNS} starts"
            )


def hundred_resources() -> str:
    blocks = ['terraform {\n  required_providers {\n    wp = { source = "wp-gitops/wp" }\n  }\n}\n']
    for i in range(POOLS):
        blocks.append(
            f'resource "wp_work_pool" "p{i}" {{\n  name = "pool-{i}"\n  concurrency_limit = {i}\n}}\n'
        )
        for j in range(QUEUES_PER_POOL):
            blocks.append(
                f'resource "wp_work_queue" "p{i}_q{j}" {{\n  work_pool = wp_work_pool.p{i}.name\n'
                f'  name = "q{j}"\n  priority = {j + 1}\n}}\n'
            )
    for k in range(DEPLOYMENTS):
        blocks.append(
            f'resource "wp_deployment" "d{k}" {{\n  name = "d{k}"\n  entrypoint = "flows/f.py:flow_{k}"\n'
            f"  work_pool = wp_work_pool.p{k}.name\n"
            f'  schedules = [{{ slug = "s", interval = {600 + k} }}]\n}}\n'
        )
    return "\n".join(blocks)


def terraform_wall_times() -> None:
    terraform = shutil.which("terraform")
    if terraform is None:
        print("terraform not found: skipping the 100-resource plan/apply figures")
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        project = root / "project"
        project.mkdir()
        (project / "main.tf").write_text(hundred_resources())
        write_mirror(root / "mirror")
        (root / "terraform.rc").write_text(mirror_cli_config(root / "mirror"))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("WP_", "TF_"))}
        env |= {"TF_CLI_CONFIG_FILE": str(root / "terraform.rc"), "WP_HOME": str(root / "wp")}
        env |= {"CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1"}
        steps = [
            ("init", ["init", "-input=false"]),
            ("apply (100 creates)", ["apply", "-auto-approve", "-input=false"]),
            ("plan (no changes)", ["plan", "-input=false", "-detailed-exitcode"]),
        ]
        for label, args in steps:
            start = time.perf_counter()
            out = subprocess.run([terraform, *args, "-no-color"], cwd=project, env=env, capture_output=True)
            took = time.perf_counter() - start
            status = "ok" if out.returncode == 0 else f"exit {out.returncode}: {out.stderr.decode()[-300:]}"
            print(f"terraform {label:22}: {took:6.2f} s wall ({status})")


def main() -> None:
    start_latency()
    terraform_wall_times()


if __name__ == "__main__":
    main()
