"""The provider's packages are the `terraform` extra: without them, starting it says how to install them."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _start_without(*modules: str) -> subprocess.CompletedProcess[str]:
    # A module set to None in sys.modules cannot be imported: as if its package were not installed.
    blank = "".join(f"sys.modules[{m!r}] = None; " for m in modules)
    code = f"import sys; {blank}from provider.entry import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )


def test_the_provider_without_its_extra_names_the_install_command_and_exits_1() -> None:
    result = _start_without("grpc", "msgpack")
    assert result.returncode == 1
    assert "grpcio, msgpack" in result.stderr
    assert "pip install 'wp-gitops[terraform]'" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1


def test_installing_the_provider_for_terraform_without_its_extra_is_refused_too(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['cryptography'] = None; from provider.install import main; "
        f"raise SystemExit(main(['dev', {str(tmp_path / 'dev')!r}]))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "cryptography" in result.stderr and "pip install 'wp-gitops[terraform]'" in result.stderr
    assert not (tmp_path / "dev").exists()


def test_wp_installs_without_the_providers_packages_and_dev_keeps_them() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extra = {d.split(">")[0] for d in project["optional-dependencies"]["terraform"]}
    assert extra == {"grpcio", "protobuf", "msgpack", "cryptography"}
    assert not extra & {d.split(">")[0] for d in project["dependencies"]}
    assert "wp-gitops[terraform]" in project["optional-dependencies"]["dev"]  # CI runs the provider's tests
    assert project["scripts"]["terraform-provider-wp"] == "provider.entry:main"


def test_wp_itself_never_imports_the_providers_packages() -> None:
    code = (
        "import sys, importlib; from reconciler.cli.commands import COMMANDS; "
        "[importlib.import_module(e.module) for e in COMMANDS.values()]; from reconciler.api import create_app; "
        "import reconciler.store.sql; "
        "print(sorted(m for m in ('grpc', 'google.protobuf', 'msgpack', 'cryptography') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
