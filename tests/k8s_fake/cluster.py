"""The fake cluster's state: Jobs, pods and events, their resource versions and watch history, the Job
controller and the kubelet.

Owns what a real control plane and node would do with a Job, in miniature: a created Job gets a pod; the
kubelet "pulls" the container's image (an image is a directory on this machine, given when the cluster is
made; an unknown one gives ErrImagePull/ImagePullBackOff, a malformed one InvalidImageName, an env entry taken
from a Secret CreateContainerConfigError), runs the container's command as a local process with the pod's
env only (never the test's environment) and records its output as the pod's log with RFC3339Nano
timestamps; the pod goes Pending → Running → Succeeded/Failed; the Job controller counts failures against
`backoffLimit`, starts another pod or sets the `Complete`/`Failed` condition; `ttlSecondsAfterFinished`
deletes a finished Job; deletion honours `propagationPolicy`. Tests steer it: `evict`, `delete_job`,
`cut_next_log_stream`, `drop_watches`, `hold_images`.

Every change goes through `_commit`, which bumps the resource version and appends the watch event under one
condition variable, so watches and lists see one consistent history.
"""

from __future__ import annotations

import contextlib
import copy
import os
import random
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

POD_SUFFIX = "bcdfghjklmnpqrstvwxz2456789"
IMAGE_REF = __import__("re").compile(
    r"^[a-z0-9]+([._/-][a-z0-9]+)*(:[\w][\w.-]{0,127})?(@sha256:[0-9a-f]{64})?$"
)


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def nano_timestamp(t: float) -> str:
    """RFC3339Nano as the kubelet writes it: trailing zeros of the fraction trimmed."""
    whole = datetime.fromtimestamp(int(t), UTC).strftime("%Y-%m-%dT%H:%M:%S")
    frac = f"{round((t - int(t)) * 1e9):09d}"[:9].rstrip("0")
    return f"{whole}.{frac}Z" if frac else f"{whole}Z"


@dataclass
class WatchEvent:
    rv: int
    kind: str  # Job | Pod
    namespace: str
    type: str  # ADDED | MODIFIED | DELETED
    obj: dict[str, Any]


@dataclass
class PodRuntime:
    """The kubelet's side of one pod: its process and its log."""

    log: list[tuple[float, str]] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    done: bool = False  # the container ended (or never will): log streams end once drained
    evicted: bool = False


@dataclass
class DeleteRequest:
    namespace: str
    name: str
    propagation: str | None


class FakeCluster:
    def __init__(self, images: dict[str, Path]) -> None:
        self.images = dict(images)
        self.held_images: set[str] = set()  # images whose pull never finishes (ContainerCreating forever)
        self.cond = threading.Condition()
        self.rv = 1
        self.jobs: dict[tuple[str, str], dict[str, Any]] = {}
        self.pods: dict[tuple[str, str], dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.history: list[WatchEvent] = []
        self.runtimes: dict[tuple[str, str], PodRuntime] = {}
        self.deletes: list[DeleteRequest] = []
        self.created_jobs: list[dict[str, Any]] = []  # bodies as received, after validation
        self.log_cuts: list[int] = []  # the next log streams are cut after this many lines each
        self.watch_generation = 0  # bumping it ends every open watch abruptly
        self.requests: list[tuple[str, str]] = []
        self.closed = False

    # ------------------------------------------------------------------------------------------ history

    def _commit(self, kind: str, ns: str, type_: str, obj: dict[str, Any]) -> None:
        """Under self.cond: a new resource version for `obj` and a watch event; wakes every waiter."""
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self.history.append(WatchEvent(self.rv, kind, ns, type_, copy.deepcopy(obj)))
        self.cond.notify_all()

    def _event(
        self, ns: str, kind: str, name: str, uid: str, reason: str, message: str, type_: str = "Normal"
    ) -> None:
        self.rv += 1
        repeated = next(
            (
                e
                for e in reversed(self.events)
                if e["involvedObject"]["uid"] == uid and e["reason"] == reason and e["message"] == message
            ),
            None,
        )
        if repeated is not None:
            # as the API server's event recorder does: a repeat counts up the event it already has
            repeated["count"] += 1
            repeated["lastTimestamp"] = now_iso()
            repeated["metadata"]["resourceVersion"] = str(self.rv)
            self.cond.notify_all()
            return
        self.events.append(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {
                    "name": f"{name}.{uuid.uuid4().hex[:16]}",
                    "namespace": ns,
                    "resourceVersion": str(self.rv),
                },
                "involvedObject": {"kind": kind, "namespace": ns, "name": name, "uid": uid},
                "reason": reason,
                "message": message,
                "type": type_,
                "firstTimestamp": now_iso(),
                "lastTimestamp": now_iso(),
                "count": 1,
                "source": {"component": "kubelet" if kind == "Pod" else "job-controller"},
            }
        )
        self.cond.notify_all()

    # ------------------------------------------------------------------------------------------ jobs

    def create_job(self, ns: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.cond:
            job = copy.deepcopy(body)
            meta = job.setdefault("metadata", {})
            if not meta.get("name"):
                meta["name"] = meta["generateName"] + "".join(random.choices(POD_SUFFIX, k=5))
            if (ns, meta["name"]) in self.jobs:
                raise KeyError(meta["name"])
            self.created_jobs.append(copy.deepcopy(body))
            uid = str(uuid.uuid4())
            meta.update(namespace=ns, uid=uid, creationTimestamp=now_iso(), generation=1)
            spec = job["spec"]
            spec.setdefault("backoffLimit", 6)
            spec.setdefault("completions", 1)
            spec.setdefault("parallelism", 1)
            spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
            tmeta = spec["template"].setdefault("metadata", {})
            tmeta["labels"] = {
                **(tmeta.get("labels") or {}),
                "batch.kubernetes.io/controller-uid": uid,
                "batch.kubernetes.io/job-name": meta["name"],
                "controller-uid": uid,
                "job-name": meta["name"],
            }
            job["status"] = {"active": 0}
            self.jobs[(ns, meta["name"])] = job
            self._commit("Job", ns, "ADDED", job)
            self._start_pod(job)
            return copy.deepcopy(job)

    def _start_pod(self, job: dict[str, Any]) -> None:
        """Under self.cond: the Job controller makes a pod; the kubelet takes it from there in a thread."""
        ns, jname, juid = job["metadata"]["namespace"], job["metadata"]["name"], job["metadata"]["uid"]
        template = copy.deepcopy(job["spec"]["template"])
        name = f"{jname}-{''.join(random.choices(POD_SUFFIX, k=5))}"
        containers = template["spec"]["containers"]
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": ns,
                "uid": str(uuid.uuid4()),
                "labels": template["metadata"]["labels"],
                "creationTimestamp": now_iso(),
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1",
                        "kind": "Job",
                        "name": jname,
                        "uid": juid,
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": template["spec"],
            "status": {
                "phase": "Pending",
                "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": now_iso()}],
                "containerStatuses": [
                    {
                        "name": c["name"],
                        "image": c["image"],
                        "imageID": "",
                        "ready": False,
                        "restartCount": 0,
                        "started": False,
                        "state": {"waiting": {"reason": "ContainerCreating"}},
                    }
                    for c in containers
                ],
            },
        }
        pod["spec"]["nodeName"] = "fake-node"
        self.pods[(ns, name)] = pod
        self.runtimes[(ns, name)] = PodRuntime()
        job["status"]["active"] = job["status"].get("active", 0) + 1
        job["status"].setdefault("startTime", now_iso())
        self._commit("Pod", ns, "ADDED", pod)
        self._commit("Job", ns, "MODIFIED", job)
        self._event(ns, "Job", jname, juid, "SuccessfulCreate", f"Created pod: {name}")
        threading.Thread(target=self._kubelet, args=(ns, name), daemon=True, name=f"kubelet-{name}").start()

    def delete_job(self, ns: str, name: str, propagation: str | None = None) -> dict[str, Any]:
        """As the API: Foreground removes the pods (their processes killed) before the Job; Background removes
        the Job then its pods; Orphan (the API's default for batch/v1 Jobs) leaves the pods running."""
        with self.cond:
            self.deletes.append(DeleteRequest(ns, name, propagation))
            job = self.jobs.get((ns, name))
            if job is None:
                raise KeyError(name)
            uid = job["metadata"]["uid"]
            if propagation == "Foreground":
                job["metadata"]["deletionTimestamp"] = now_iso()
                job["metadata"]["finalizers"] = ["foregroundDeletion"]
                self._commit("Job", ns, "MODIFIED", job)
                result = copy.deepcopy(job)
                self._delete_pods(ns, uid)
                self._remove_job(ns, name)
                return result
            self._remove_job(ns, name)
            if propagation == "Background":
                self._delete_pods(ns, uid)
            return copy.deepcopy(job)

    def _remove_job(self, ns: str, name: str) -> None:
        job = self.jobs.pop((ns, name))
        self._commit("Job", ns, "DELETED", job)

    def _delete_pods(self, ns: str, job_uid: str) -> None:
        for key, pod in list(self.pods.items()):
            if pod["metadata"]["labels"].get("controller-uid") == job_uid:
                self._kill(key)
                del self.pods[key]
                self._commit("Pod", ns, "DELETED", pod)

    def _kill(self, key: tuple[str, str]) -> None:
        runtime = self.runtimes[key]
        if runtime.proc is not None and runtime.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(runtime.proc.pid, signal.SIGKILL)
        runtime.done = True

    # ------------------------------------------------------------------------------------------ kubelet

    def _set_pod(
        self, ns: str, name: str, change: dict[str, Any], container: dict[str, Any] | None = None
    ) -> bool:
        """Under self.cond: update a pod's status; False when the pod is gone."""
        pod = self.pods.get((ns, name))
        if pod is None:
            return False
        pod["status"].update(change)
        if container is not None:
            pod["status"]["containerStatuses"][0].update(container)
        self._commit("Pod", ns, "MODIFIED", pod)
        return True

    def _kubelet(self, ns: str, name: str) -> None:
        time.sleep(0.05)
        with self.cond:
            pod = self.pods.get((ns, name))
            if pod is None:
                return
            uid = pod["metadata"]["uid"]
            container = pod["spec"]["containers"][0]
            image = container["image"]
            self._event(ns, "Pod", name, uid, "Scheduled", f"Successfully assigned {ns}/{name} to fake-node")
        problem = self._pull_problem(container)
        if problem is not None:
            self._keep_waiting(ns, name, uid, image, *problem)
            return
        while image in self.held_images:
            with self.cond:
                if self.closed or (ns, name) not in self.pods:
                    return
                self.cond.wait(0.1)
        root = self.images[image]
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(root),
            "HOSTNAME": name,
            **{e["name"]: e.get("value", "") for e in container.get("env") or []},
        }
        argv = [*(container.get("command") or []), *(container.get("args") or [])]
        cwd = root / container["workingDir"].lstrip("/") if container.get("workingDir") else root
        with self.cond:
            runtime = self.runtimes.get((ns, name))
            if runtime is None or (ns, name) not in self.pods:
                return
            self._event(
                ns, "Pod", name, uid, "Pulled", f'Container image "{image}" already present on machine'
            )
            try:
                runtime.proc = subprocess.Popen(
                    argv,
                    cwd=cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as exc:
                runtime.done = True
                self._set_pod(
                    ns,
                    name,
                    {"phase": "Failed"},
                    {
                        "state": {
                            "terminated": {
                                "exitCode": 128,
                                "reason": "StartError",
                                "message": str(exc),
                                "startedAt": now_iso(),
                                "finishedAt": now_iso(),
                            }
                        }
                    },
                )
                self._pod_finished(ns, name, succeeded=False)
                return
            started = now_iso()
            self._set_pod(
                ns,
                name,
                {"phase": "Running", "startTime": started, "podIP": "10.0.0.1"},
                {"state": {"running": {"startedAt": started}}, "ready": True, "started": True},
            )
            self._event(ns, "Pod", name, uid, "Started", f"Started container {container['name']}")
        proc = runtime.proc
        assert proc.stdout is not None
        for raw in proc.stdout:
            with self.cond:
                runtime.log.append((time.time(), raw.decode("utf-8", "replace").rstrip("\n")))
                self.cond.notify_all()
        code = proc.wait()
        with self.cond:
            runtime.done = True
            self.cond.notify_all()
            if runtime.evicted or (ns, name) not in self.pods:
                return
            reason = "Completed" if code == 0 else ("OOMKilled" if code == -9 else "Error")
            exit_code = code if code >= 0 else 128 - code
            self._set_pod(
                ns,
                name,
                {"phase": "Succeeded" if code == 0 else "Failed"},
                {
                    "state": {
                        "terminated": {
                            "exitCode": exit_code,
                            "reason": reason,
                            "startedAt": started,
                            "finishedAt": now_iso(),
                        }
                    },
                    "ready": False,
                },
            )
            self._pod_finished(ns, name, succeeded=code == 0)

    def _pull_problem(self, container: dict[str, Any]) -> tuple[str, str] | None:
        image = container["image"]
        if not IMAGE_REF.match(image):
            return (
                "InvalidImageName",
                f'Failed to apply default image tag "{image}": couldn\'t parse image name "{image}": invalid reference format',
            )
        for env in container.get("env") or []:
            ref = (env.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                return ("CreateContainerConfigError", f'secret "{ref.get("name")}" not found')
        if image not in self.images:
            return (
                "ErrImagePull",
                f'rpc error: code = NotFound desc = failed to pull and unpack image "{image}": not found',
            )
        return None

    def _keep_waiting(self, ns: str, name: str, uid: str, image: str, reason: str, message: str) -> None:
        """A pod that cannot start stays Pending: an image pull alternates ErrImagePull and ImagePullBackOff."""
        backoff = reason == "ErrImagePull"
        while True:
            with self.cond:
                if self.closed or (ns, name) not in self.pods:
                    return
                self._set_pod(ns, name, {}, {"state": {"waiting": {"reason": reason, "message": message}}})
                self._event(
                    ns,
                    "Pod",
                    name,
                    uid,
                    "Failed",
                    f"Error: {reason}" if not backoff else f'Failed to pull image "{image}": {message}',
                    "Warning",
                )
                # A fixed pace, not "until the next change": pods waiting side by side would otherwise wake each other
                # with every status they set, without end (gigabytes of events within a test run).
                retry_at = time.monotonic() + 0.3
                while not self.closed and (left := retry_at - time.monotonic()) > 0:
                    self.cond.wait(left)
                if backoff:
                    reason, message = (
                        ("ImagePullBackOff", f'Back-off pulling image "{image}"')
                        if reason == "ErrImagePull"
                        else (
                            "ErrImagePull",
                            message
                            if "rpc error" in message
                            else f'rpc error: code = NotFound desc = failed to pull and unpack image "{image}": not found',
                        )
                    )

    def _pod_finished(self, ns: str, name: str, *, succeeded: bool) -> None:
        """Under self.cond: the Job controller's reaction to a pod that ended."""
        pod = self.pods[(ns, name)]
        jname = pod["metadata"]["labels"]["job-name"]
        job = self.jobs.get((ns, jname))
        if job is None:
            return
        status = job["status"]
        status["active"] = max(0, status.get("active", 1) - 1)
        if succeeded:
            status["succeeded"] = status.get("succeeded", 0) + 1
            status["completionTime"] = now_iso()
            status["conditions"] = [
                {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": now_iso()},
                {"type": "Complete", "status": "True", "lastTransitionTime": now_iso()},
            ]
        else:
            status["failed"] = status.get("failed", 0) + 1
            if status["failed"] > job["spec"]["backoffLimit"]:
                status["conditions"] = [
                    {
                        "type": "FailureTarget",
                        "status": "True",
                        "reason": "BackoffLimitExceeded",
                        "lastTransitionTime": now_iso(),
                    },
                    {
                        "type": "Failed",
                        "status": "True",
                        "reason": "BackoffLimitExceeded",
                        "message": "Job has reached the specified backoff limit",
                        "lastTransitionTime": now_iso(),
                    },
                ]
            else:
                self._commit("Job", ns, "MODIFIED", job)
                self._start_pod(job)
                return
        self._commit("Job", ns, "MODIFIED", job)
        ttl = job["spec"].get("ttlSecondsAfterFinished")
        if ttl is not None:
            timer = threading.Timer(ttl, self._expire, args=(ns, jname, job["metadata"]["uid"]))
            timer.daemon = True
            timer.start()

    def _expire(self, ns: str, name: str, uid: str) -> None:
        with self.cond:
            job = self.jobs.get((ns, name))
            if job is not None and job["metadata"]["uid"] == uid:
                self._remove_job(ns, name)
                self._delete_pods(ns, uid)

    # ------------------------------------------------------------------------------------------ steering

    def evict(self, ns: str, pod_name: str) -> None:
        """The node evicts the pod: its process dies, the pod is Failed/Evicted, the Job controller reacts."""
        with self.cond:
            runtime = self.runtimes[(ns, pod_name)]
            runtime.evicted = True
            self._kill((ns, pod_name))
            pod = self.pods[(ns, pod_name)]
            self._set_pod(
                ns,
                pod_name,
                {"phase": "Failed", "reason": "Evicted", "message": "The node was low on resource: memory."},
                {
                    "state": {
                        "terminated": {
                            "exitCode": 137,
                            "reason": "Error",
                            "startedAt": now_iso(),
                            "finishedAt": now_iso(),
                        }
                    },
                    "ready": False,
                },
            )
            self._event(
                ns,
                "Pod",
                pod_name,
                pod["metadata"]["uid"],
                "Evicted",
                "The node was low on resource: memory.",
                "Warning",
            )
            self._pod_finished(ns, pod_name, succeeded=False)

    def cut_next_log_stream(self, after_lines: int) -> None:
        with self.cond:
            self.log_cuts.append(after_lines)

    def drop_watches(self) -> None:
        with self.cond:
            self.watch_generation += 1
            self.cond.notify_all()

    def pods_of(self, ns: str, job_name: str) -> list[dict[str, Any]]:
        with self.cond:
            return [
                copy.deepcopy(p)
                for p in self.pods.values()
                if p["metadata"]["namespace"] == ns and p["metadata"]["labels"].get("job-name") == job_name
            ]

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> Any:
        """Block until predicate() (called under the lock) is truthy; its value."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                value = predicate()
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("the fake cluster never reached the expected state")
                self.cond.wait(min(left, 0.1))

    def shutdown(self) -> None:
        with self.cond:
            self.closed = True
            for key in list(self.runtimes):
                self._kill(key)
            self.cond.notify_all()
