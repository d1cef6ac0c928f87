"""The provider's executable entry (`terraform-provider-wp`, `python -m provider.entry`).

Owns the check that the `terraform` extra is installed: the provider needs grpcio, protobuf, msgpack and
cryptography, which a plain `pip install wp-gitops` leaves out to keep `wp` light. Without them it prints one line
naming the command that adds them and exits 1, instead of a traceback inside Terraform's log. Then it starts
`server.main`. Must never import those packages itself (finding them is enough; the server imports them).
"""

from __future__ import annotations

import importlib.util
import sys

INSTALL = "pip install 'wp-gitops[terraform]'"
# module → the distribution that provides it
NEEDED = {
    "grpc": "grpcio",
    "google.protobuf": "protobuf",
    "msgpack": "msgpack",
    "cryptography": "cryptography",
}


def missing_packages() -> list[str]:
    """The distributions of the extra that cannot be imported, in a stable order."""
    missing = []
    for module, distribution in NEEDED.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a parent package missing, or a module blanked in sys.modules
            found = False
        if not found:
            missing.append(distribution)
    return missing


def main() -> None:
    missing = missing_packages()
    if missing:
        sys.stderr.write(
            f"terraform-provider-wp: error: the Terraform provider needs {', '.join(missing)}, "
            f"which are not installed; install them with: {INSTALL}\n"
        )
        raise SystemExit(1)
    from provider.server import main as serve

    serve()


if __name__ == "__main__":
    main()
