"""`KubernetesJob`: one run's Job in a cluster, followed until it ends, for the worker to poll.

Owns following a run's Job (SPEC §5 "kubernetes", §1 timeouts) once the executor has created or found it: background
threads watch the Job and its pods (read or list, then watch from that resource version; a watch that ends, drops
or expires is made again and never changes a run's state) and follow each started pod's log
(`kubernetes_logs`). One supervisor thread decides, from what `kubernetes_status` reads in the Job and pods: the
Job's `Complete`/`Failed` condition and the pod's termination state end the run (after its logs are read); a pod
stuck in a state waiting cannot fix (`ErrImagePull`, `ImagePullBackOff`, `InvalidImageName`,
`CreateContainerConfigError`) fails it after `hopeless_grace_seconds` (< 60 s); no pod started within
`pod_watch_timeout_seconds` crashes it with the pod's last reason; `job_watch_timeout_seconds` fails it ("timed
out after N s"); an evicted pod is logged and the Job's next pod followed; a Job deleted by someone else crashes
it ("Kubernetes job was deleted"). Every end it decides deletes the Job with foreground propagation, as a cancel
does.

Must never touch the store: outcomes are events (output lines, state reports) and an exit code for the worker.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from reconciler.runtime.executors.base import Event, Output, StateReport
from reconciler.runtime.executors.kubernetes_logs import follow_pod_log
from reconciler.runtime.executors.kubernetes_status import (
    container_started,
    job_outcome,
    latest_pod,
    terminated_state,
    waiting_reason,
)

HOPELESS_REASONS = frozenset(
    {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError"}
)
FINAL_REPORTS = frozenset({"COMPLETED", "FAILED", "CRASHED", "CANCELLED"})
WP_STREAM = "wp"  # the log stream of the executor's own messages


def batch_api(api: Any) -> Any:
    """The batch/v1 API; typed loosely: the executor reads raw JSON (`_preload_content=False`), not models."""
    from kubernetes import client

    return client.BatchV1Api(api)


def core_api(api: Any) -> Any:
    from kubernetes import client

    return client.CoreV1Api(api)


def _iter_lines(resp: Any) -> Iterator[str]:
    from kubernetes.watch import watch

    lines: Iterator[str] = watch.iter_resp_lines(resp)  # type: ignore[no-untyped-call]
    return lines


def api_message(exc: Any) -> str:
    try:
        return str(json.loads(exc.body)["message"])
    except (TypeError, ValueError, KeyError):
        return f"{exc.status} {exc.reason}"


class KubernetesJob:
    """One run's Job, followed by background threads; every method returns at once."""

    def __init__(
        self,
        api: Any,
        namespace: str,
        name: str,
        *,
        created: float,
        pod_watch_timeout: float,
        job_watch_timeout: float | None,
        hopeless_grace: float,
        watch_seconds: int,
        log_end_grace: float,
    ) -> None:
        self._api = api
        self.namespace = namespace
        self.name = name
        self._created = created
        self._pod_watch_timeout = pod_watch_timeout
        self._job_watch_timeout = job_watch_timeout
        self._hopeless_grace = hopeless_grace
        self._watch_seconds = watch_seconds
        self._log_end_grace = log_end_grace
        self._events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self._cond = threading.Condition()
        self._job: dict[str, Any] | None = None
        self._job_gone = False
        self._pods: dict[str, dict[str, Any]] = {}
        self._pods_listed = False  # decisions wait for the first list of the Job's pods
        self._logs_started: set[str] = set()
        self._logs_done: set[str] = set()
        self._hopeless_since: dict[str, float] = {}
        self._noted: set[tuple[str, str]] = set()
        self._final_reported = False
        self._stop_grace: float | None = None
        self._deleted_by_us = False
        self._code: int | None = None
        self._closed = False

    # ------------------------------------------------------------------------------------ the worker's side

    @property
    def id(self) -> str:
        return f"{self.namespace}/{self.name}"

    def selectables(self) -> Sequence[int]:
        return [] if self._closed else [self._wake_read]

    def read_events(self) -> list[Event]:
        with contextlib.suppress(BlockingIOError, OSError):
            while os.read(self._wake_read, 4096):
                pass
        events: list[Event] = []
        while True:
            try:
                events.append(self._events.get_nowait())
            except queue.Empty:
                return events

    def exit_code(self) -> int | None:
        with self._cond:
            code = self._code
        return code if code is not None and self._events.empty() else None

    def stop(self, grace: float) -> None:
        with self._cond:
            if self._stop_grace is None:
                self._stop_grace = grace
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
            for fd in (self._wake_read, self._wake_write):
                with contextlib.suppress(OSError):
                    os.close(fd)

    # ------------------------------------------------------------------------------------ threads

    def begin(self) -> None:
        for target in (self._watch_job, self._watch_pods, self._supervise):
            threading.Thread(target=target, daemon=True, name=f"k8s-{target.__name__}-{self.name}").start()

    def _emit(self, event: Event) -> None:
        self._events.put(event)
        self._wake()

    def _wake(self) -> None:
        """Make the worker's select return. Under the lock and only while open: once `close` has run, the fd
        number may already belong to another file."""
        with self._cond:
            if self._closed:
                return
            with contextlib.suppress(BlockingIOError, OSError):
                os.write(self._wake_write, b"x")

    def say(self, text: str) -> None:
        self._emit(Output(WP_STREAM, text))

    def _running(self) -> bool:
        with self._cond:
            return not self._closed and self._code is None

    def _stream(self, call: Callable[..., Any], **kwargs: Any) -> Iterator[dict[str, Any]]:
        """The events of one watch request (JSON objects); ends when the server ends it or it drops."""
        resp = call(watch=True, _preload_content=False, timeout_seconds=self._watch_seconds, **kwargs)
        try:
            for line in _iter_lines(resp):
                if line:
                    yield json.loads(line)
                if not self._running():
                    return
        finally:
            resp.close()
            resp.release_conn()

    def _watch_job(self) -> None:
        """Keep self._job current: read it, then watch it from its resource version; again after any end."""
        from kubernetes import client

        batch = batch_api(self._api)
        delay = 0.2
        while self._running():
            try:
                resp = batch.read_namespaced_job(self.name, self.namespace, _preload_content=False)
                job = json.loads(resp.data)
                self._set_job(job)
                for event in self._stream(
                    batch.list_namespaced_job,
                    namespace=self.namespace,
                    field_selector=f"metadata.name={self.name}",
                    resource_version=job["metadata"]["resourceVersion"],
                ):
                    if event.get("type") == "ERROR":
                        break  # 410 Gone and the like: read again
                    if event.get("type") == "DELETED":
                        self._set_job(None)
                        return
                    self._set_job(event["object"])
                delay = 0.2
            except client.ApiException as exc:
                if exc.status == 404:
                    self._set_job(None)
                    return
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
            except Exception:  # a dropped connection or an unreachable server: read and watch again
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _set_job(self, job: dict[str, Any] | None) -> None:
        with self._cond:
            if job is None:
                self._job_gone = True
            else:
                self._job = job
            self._cond.notify_all()

    def _watch_pods(self) -> None:
        """Keep self._pods current: list the Job's pods, then watch them from the list's version."""

        core = core_api(self._api)
        selector = f"job-name={self.name}"
        delay = 0.2
        while self._running():
            try:
                resp = core.list_namespaced_pod(
                    self.namespace, label_selector=selector, _preload_content=False
                )
                listed = json.loads(resp.data)
                with self._cond:
                    seen = {p["metadata"]["name"]: p for p in listed["items"]}
                    for name in set(self._pods) - set(seen):
                        self._pods[name]["deleted"] = True
                    self._pods.update(seen)
                    self._pods_listed = True
                    self._cond.notify_all()
                for event in self._stream(
                    core.list_namespaced_pod,
                    namespace=self.namespace,
                    label_selector=selector,
                    resource_version=listed["metadata"]["resourceVersion"],
                ):
                    if event.get("type") == "ERROR":
                        break
                    pod = event["object"]
                    with self._cond:
                        if event.get("type") == "DELETED":
                            pod["deleted"] = True
                        self._pods[pod["metadata"]["name"]] = pod
                        self._cond.notify_all()
                delay = 0.2
            except Exception:  # dropped, expired or unreachable: list and watch again
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _follow_log(self, pod: str) -> None:
        try:
            follow_pod_log(
                self._api,
                self.namespace,
                pod,
                emit=self._emit_output,
                keep_going=self._running,
                ended=lambda: self._pod_ended(pod),
            )
        finally:
            with self._cond:
                self._logs_done.add(pod)
                self._cond.notify_all()

    def _emit_output(self, event: Event) -> None:
        if isinstance(event, StateReport) and event.state in FINAL_REPORTS:
            self._final_reported = True
        self._emit(event)

    def _pod_ended(self, pod: str) -> bool:
        with self._cond:
            data = self._pods.get(pod)
            return data is None or bool(data.get("deleted")) or terminated_state(data) is not None

    # ------------------------------------------------------------------------------------ decisions

    def _supervise(self) -> None:
        try:
            while True:
                with self._cond:
                    if self._closed or self._code is not None:
                        return
                    self._cond.wait(0.25)
                self._decide()
        except Exception as exc:  # never leave the worker waiting on a dead thread
            self._finish_with("CRASHED", f"the worker lost track of Kubernetes job {self.id}: {exc}", 1)

    def _decide(self) -> None:
        with self._cond:
            job = self._job
            gone = self._job_gone
            pods = {n: dict(p) for n, p in self._pods.items()}
            stop = self._stop_grace
            listed = self._pods_listed
        now = time.time()
        if stop is not None and not self._deleted_by_us:
            self.say(f"deleting Kubernetes job {self.id} (foreground propagation)")
            self._delete(stop)
            self._finish(-15)
            return
        if not listed:
            return  # the Job's end is judged with its pods in view, so their logs are read first
        self._start_logs(pods)
        self._note_pods(pods)
        if gone:
            finished = job is not None and job_outcome(job) is not None
            if job is not None and finished:
                self._complete(job, pods)  # a TTL removed a finished Job before we read its end
            else:
                self._finish_with("CRASHED", "Kubernetes job was deleted", 1)
            return
        if job is None:
            return
        if job_outcome(job) is not None:
            self._complete(job, pods)
            return
        if self._job_watch_timeout is not None and now - self._created > self._job_watch_timeout:
            seconds = f"{self._job_watch_timeout:g}"
            self._delete(0)
            self._finish_with("FAILED", f"timed out after {seconds} s (job_watch_timeout_seconds)", 1)
            return
        for name, pod in pods.items():
            waiting = waiting_reason(pod)
            if waiting is not None and waiting[0] in HOPELESS_REASONS:
                first = self._hopeless_since.setdefault(name, now)
                if now - first >= self._hopeless_grace:
                    self._delete(0)
                    self._finish_with("FAILED", f"pod {name} cannot start: {waiting[0]}: {waiting[1]}", 1)
                    return
            else:
                self._hopeless_since.pop(name, None)
        started = any(container_started(p) for p in pods.values())
        if not started and now - self._created > self._pod_watch_timeout:
            reason = self._last_reason(pods)
            self._delete(0)
            self._finish_with(
                "CRASHED",
                f"the pod did not start within {self._pod_watch_timeout:g} s (pod_watch_timeout_seconds): {reason}",
                1,
            )

    def _start_logs(self, pods: Mapping[str, dict[str, Any]]) -> None:
        for name, pod in pods.items():
            if name not in self._logs_started and container_started(pod):
                self._logs_started.add(name)
                threading.Thread(
                    target=self._follow_log, args=(name,), daemon=True, name=f"k8s-log-{name}"
                ).start()

    def _note_pods(self, pods: Mapping[str, dict[str, Any]]) -> None:
        """Say once what a user would want to know about a pod: evicted, failed and replaced."""
        for name, pod in pods.items():
            status = pod.get("status") or {}
            if status.get("reason") == "Evicted" and (name, "evicted") not in self._noted:
                self._noted.add((name, "evicted"))
                self.say(
                    f"pod {name} was evicted: {status.get('message', '')}; the Job may start another pod"
                )

    def _complete(self, job: Mapping[str, Any], pods: Mapping[str, dict[str, Any]]) -> None:
        """The Job ended: wait (a bounded time) for the started pods' logs and for the pod watch to show how the
        last pod ended (the Job's and the pods' watches are separate streams), then end with the pod's code."""
        deadline = time.monotonic() + self._log_end_grace
        with self._cond:
            while time.monotonic() < deadline and not self._closed:
                last = latest_pod(self._pods)
                pod_known = last is None or bool(last.get("deleted")) or terminated_state(last) is not None
                if pod_known and self._logs_started <= self._logs_done:
                    break
                self._cond.wait(0.1)
            pods = {n: dict(p) for n, p in self._pods.items()}
        kind, reason, message = job_outcome(job) or ("Failed", "", "")
        last = latest_pod(pods)
        terminated = terminated_state(last) if last is not None else None
        code = int(terminated.get("exitCode", 1)) if terminated else (0 if kind == "Complete" else 1)
        if kind == "Complete":
            self._finish(0)
            return
        pod_reason = ""
        if last is not None:
            status = last.get("status") or {}
            pod_reason = status.get("reason") or (terminated or {}).get("reason") or ""
        detail = f"Kubernetes job failed ({reason or kind}: {message or 'no message'})"
        if last is not None:
            detail += f"; pod {last['metadata']['name']} ended with exit code {code}"
            if pod_reason:
                detail += f" ({pod_reason})"
        self._finish_with("CRASHED", detail, code or 1)

    def _last_reason(self, pods: Mapping[str, dict[str, Any]]) -> str:
        for pod in pods.values():
            waiting = waiting_reason(pod)
            if waiting is not None:
                return f"{waiting[0]}: {waiting[1]}" if waiting[1] else waiting[0]
        if pods:
            phase = next(iter(pods.values())).get("status", {}).get("phase", "Pending")
            return f"the pod stayed {phase}"
        return "no pod was created for the job"

    def _delete(self, grace: float) -> None:
        from kubernetes import client

        self._deleted_by_us = True
        body = client.V1DeleteOptions(propagation_policy="Foreground", grace_period_seconds=int(grace))
        for attempt in range(5):
            try:
                batch_api(self._api).delete_namespaced_job(self.name, self.namespace, body=body)
                return
            except client.ApiException as exc:
                if exc.status == 404:
                    return
                if attempt == 4:
                    self.say(f"could not delete Kubernetes job {self.id}: {api_message(exc)}")
            except Exception as exc:
                if attempt == 4:
                    self.say(f"could not delete Kubernetes job {self.id}: {exc}")
            time.sleep(0.2 * (attempt + 1))

    def _finish_with(self, state: str, message: str, code: int) -> None:
        """End with a state of the executor's (unless the runner already reported a final one)."""
        self.say(message)
        if not self._final_reported:
            self._emit(StateReport(state, message))
        self._finish(code)

    def _finish(self, code: int) -> None:
        with self._cond:
            if self._code is None:
                self._code = code
            self._cond.notify_all()
        self._wake()
