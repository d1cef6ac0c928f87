"""The in-process Kubernetes the executor's tests run against must behave like a cluster over a whole test run:
a pod that cannot pull its image retries at a steady pace with its events counted up, as the API server's
event recorder does, and nothing keeps running once the fake is shut down. A pod left in ImagePullBackOff
once grew a CI worker to 21 GB and starved the tests after it."""

from __future__ import annotations

import threading
import time

from tests.k8s_fake.cluster import FakeCluster


def job(name: str) -> dict[str, object]:
    container = {"name": "flow", "image": "no/such-image:1", "command": ["true"]}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"template": {"spec": {"containers": [container], "restartPolicy": "Never"}}},
    }


def kubelets() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("kubelet-")]


def test_pods_that_cannot_pull_retry_at_a_steady_pace_and_stop_at_shutdown() -> None:
    cluster = FakeCluster({})
    for n in range(3):  # side by side: each one's status changes used to wake the others at once
        cluster.create_job("default", job(f"stuck-{n}"))
    time.sleep(1.5)
    with cluster.cond:
        events = [e for e in cluster.events if e["involvedObject"]["kind"] == "Pod"]
        versions = len(cluster.history)
    pulls = [e for e in events if e["reason"] == "Failed"]
    assert pulls and all(e["type"] == "Warning" for e in pulls)
    assert len(events) <= 3 * 3  # per pod: Scheduled and the two pull failures, each counted up
    assert max(e["count"] for e in pulls) >= 2  # the retries happened and were counted
    assert versions < 3 * 2 * (1.5 / 0.3 + 2)  # about one status a retry, not one a wake-up
    cluster.shutdown()
    deadline = time.monotonic() + 5
    while kubelets() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not kubelets(), "a kubelet thread outlived its cluster"
