"""Serve the fake cluster by hand, to try a kubernetes pool without a cluster:

    PYTHONPATH=tests python -m k8s_fake --image data-platform/flows:2026.11=examples/platform \\
        --namespace flows-dev --kubeconfig /tmp/wp-fake-kubeconfig

then `KUBECONFIG=/tmp/wp-fake-kubeconfig wp worker start --pool k8s-dev --type kubernetes`. Runs until Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading
from pathlib import Path

from k8s_fake.cluster import FakeCluster
from k8s_fake.server import FakeApiServer


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m k8s_fake", description=__doc__.splitlines()[0])
    parser.add_argument("--image", action="append", default=[], help="NAME=DIRECTORY: an image and its files")
    parser.add_argument("--namespace", action="append", default=["default"], help="a namespace that exists")
    parser.add_argument("--kubeconfig", type=Path, required=True, help="where to write the kubeconfig")
    args = parser.parse_args()
    images = {}
    for item in args.image:
        name, _, directory = item.partition("=")
        images[name] = Path(directory).resolve()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with FakeApiServer(FakeCluster(images), namespaces=args.namespace) as server:
        server.kubeconfig(args.kubeconfig)
        print(f"fake Kubernetes API at {server.url}; kubeconfig written to {args.kubeconfig}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()


if __name__ == "__main__":
    main()
