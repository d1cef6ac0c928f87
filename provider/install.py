"""Installing terraform-provider-wp for a local Terraform: a filesystem mirror or a dev_overrides directory.

Owns the layouts Terraform reads (`HOST/NAMESPACE/TYPE/VERSION/OS_ARCH/terraform-provider-TYPE_vVERSION`
for an unpacked filesystem mirror; a directory holding `terraform-provider-wp` for dev_overrides), the
executable wrapper script that starts this Python's provider, and the CLI configuration that points
Terraform at them. `python -m provider.install mirror DIR` / `dev DIR` writes one and prints the config.
Must never run Terraform or talk to a registry.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import shutil
import sys
from pathlib import Path

from provider.entry import INSTALL, missing_packages

HOSTNAME = "registry.terraform.io"
NAMESPACE = "wp-gitops"
TYPE = "wp"
SOURCE = f"{NAMESPACE}/{TYPE}"  # the short form: Terraform adds its default host itself
VERSION = "0.1.0"
BINARY = f"terraform-provider-{TYPE}"


def os_arch() -> str:
    """Terraform's platform name, e.g. linux_amd64 or darwin_arm64."""
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
    return f"{sys.platform.removesuffix('32')}_{arch}"


def provider_command() -> list[str]:
    """How to start the provider: its console script when installed, else this Python with the module."""
    beside = Path(sys.executable).parent / BINARY  # not a version manager's shim: those cost a start-up
    script = str(beside) if beside.is_file() else shutil.which(BINARY)
    if script:
        return [os.path.realpath(script)]
    return [sys.executable, "-m", "provider.entry"]


def wrapper_script(command: list[str]) -> str:
    # Terraform runs the file it finds; a shell wrapper lets that file be this Python's provider.
    return f'#!/bin/sh\nexec {shlex.join(command)} "$@"\n'


def _write_executable(path: Path, command: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(wrapper_script(command), encoding="utf-8")
    path.chmod(0o755)
    return path


def write_mirror(root: Path, command: list[str] | None = None, version: str = VERSION) -> Path:
    """An unpacked filesystem mirror under `root`; returns the provider executable's path."""
    target = root / HOSTNAME / NAMESPACE / TYPE / version / os_arch() / f"{BINARY}_v{version}"
    return _write_executable(target, command or provider_command())


def write_dev_override(directory: Path, command: list[str] | None = None) -> Path:
    """A directory holding `terraform-provider-wp` for `dev_overrides`; returns the executable's path."""
    return _write_executable(directory / BINARY, command or provider_command())


def mirror_cli_config(root: Path) -> str:
    """CLI configuration: wp-gitops/wp from the mirror (lockfile written by init), every other provider from
    its registry as usual."""
    return (
        "provider_installation {\n"
        "  filesystem_mirror {\n"
        f"    path    = {_hcl_string(str(root.resolve()))}\n"
        f'    include = ["{SOURCE}"]\n'
        "  }\n"
        "  direct {\n"
        f'    exclude = ["{SOURCE}"]\n'
        "  }\n"
        "}\n"
    )


def dev_cli_config(directory: Path) -> str:
    """CLI configuration with `dev_overrides` (skip `terraform init` for this provider; no lockfile)."""
    return (
        "provider_installation {\n"
        "  dev_overrides {\n"
        f'    "{SOURCE}" = {_hcl_string(str(directory.resolve()))}\n'
        "  }\n"
        "  direct {}\n"
        "}\n"
    )


def _hcl_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m provider.install",
        description="Make terraform-provider-wp installable by Terraform and print the CLI configuration "
        "to put in ~/.terraformrc (or a file named by TF_CLI_CONFIG_FILE).",
    )
    parser.add_argument(
        "how", choices=["mirror", "dev"], help="a filesystem mirror (with lockfile) or dev_overrides"
    )
    parser.add_argument("directory", type=Path, help="where to write the mirror or the override directory")
    args = parser.parse_args(argv)
    missing = missing_packages()
    if missing:  # a provider Terraform cannot start is worse than no provider: say so now
        print(
            f"error: the Terraform provider needs {', '.join(missing)}, which are not installed; "
            f"install them with: {INSTALL}",
            file=sys.stderr,
        )
        return 1
    if args.how == "mirror":
        exe = write_mirror(args.directory)
        config = mirror_cli_config(args.directory)
    else:
        exe = write_dev_override(args.directory)
        config = dev_cli_config(args.directory)
    print(f"# wrote {exe}", file=sys.stderr)
    print(config, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
