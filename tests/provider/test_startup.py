"""Start-up: the schema response comes from a cache keyed by the schema's sources, identical to the one
computed, and the install helpers lay the provider out where Terraform looks for it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from harness import launch

from provider._proto import tfplugin6_pb2 as pb
from provider.install import (
    HOSTNAME,
    dev_cli_config,
    mirror_cli_config,
    os_arch,
    write_dev_override,
    write_mirror,
)
from provider.server import schema_cache_path


def schema_of(db_url: str) -> pb.GetProviderSchema.Response:
    p = launch(db_url, tls=False)
    try:
        response: pb.GetProviderSchema.Response = p.stub.GetProviderSchema(
            pb.GetProviderSchema.Request(), timeout=30
        )
        return response
    finally:
        p.shutdown()


def test_schema_is_served_from_a_fresh_cache(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cache = schema_cache_path({"XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert cache is not None and not cache.exists()
    computed = schema_of(db_url)  # first start computes it and writes the cache
    assert len(computed.resource_schemas) == 3
    assert pb.GetProviderSchema.Response.FromString(cache.read_bytes()) == computed
    assert schema_of(db_url) == computed  # second start answers from the cache
    cache.write_bytes(b"")  # an empty (broken) cache is ignored
    assert schema_of(db_url) == computed
    monkeypatch.setenv("WP_PROVIDER_SCHEMA_CACHE", "off")
    assert schema_of(db_url) == computed


def test_mirror_and_dev_override_layouts(tmp_path: Path) -> None:
    exe = write_mirror(tmp_path / "mirror", ["/bin/echo", "provider"])
    assert exe == tmp_path / "mirror" / HOSTNAME / "wp-gitops/wp/0.1.0" / os_arch() / (
        "terraform-provider-wp_v0.1.0"
    )
    assert subprocess.run([exe, "x"], capture_output=True, text=True).stdout == "provider x\n"
    config = mirror_cli_config(tmp_path / "mirror")
    assert "filesystem_mirror" in config and 'include = ["wp-gitops/wp"]' in config
    dev = write_dev_override(tmp_path / "dev", ["/bin/true"])
    assert dev.name == "terraform-provider-wp" and dev.stat().st_mode & 0o111
    assert f'"wp-gitops/wp" = "{tmp_path / "dev"}"' in dev_cli_config(tmp_path / "dev")
