"""The `kubernetes` executor: a run as a batch/v1 Job, through the official `kubernetes` client.

Owns talking to the cluster for a run (SPEC §5 "kubernetes"): the client from a kubeconfig (`kubeconfig=`,
`KUBECONFIG`, `~/.kube/config`) or the in-cluster service account; creating the Job that `kubernetes_manifest`
builds; re-attaching to a run's Job by its `namespace/job` id and its `wp.io/flow-run-id` label. What follows a
Job until it ends is `kubernetes_job.KubernetesJob`, the handle the worker polls.

Must never touch the store: outcomes are events (output lines, state reports) and an exit code for the worker.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reconciler.model import FlowRun
from reconciler.runtime.executors.base import ExecutorError, Job
from reconciler.runtime.executors.container import dropped_credentials
from reconciler.runtime.executors.kubernetes_job import KubernetesJob, api_message, batch_api
from reconciler.runtime.executors.kubernetes_manifest import (
    DEFAULT_POD_WATCH_TIMEOUT,
    JOB_WATCH_ANNOTATION,
    POD_WATCH_ANNOTATION,
    RUN_ID_LABEL,
    job_body,
    label_value,
    timeout_of,
)
from reconciler.runtime.executors.kubernetes_status import (
    parse_time,
)


class KubernetesExecutor:
    type = "kubernetes"

    def __init__(
        self,
        kubeconfig: str | None = None,
        *,
        context: str | None = None,
        hopeless_grace_seconds: float = 20.0,
        watch_seconds: int = 60,
        log_end_grace_seconds: float = 10.0,
    ) -> None:
        self._kubeconfig = kubeconfig
        self._context = context
        self._hopeless_grace = hopeless_grace_seconds
        self._watch_seconds = watch_seconds
        self._log_end_grace = log_end_grace_seconds
        self._api: Any = None

    def api(self) -> Any:
        """The client's ApiClient, made once: kubeconfig when one is found, else the in-cluster config."""
        if self._api is None:
            from kubernetes import client, config

            path = (
                self._kubeconfig or os.environ.get("KUBECONFIG") or str(Path("~/.kube/config").expanduser())
            )
            try:
                if self._kubeconfig or Path(path.split(os.pathsep)[0]).exists():
                    load: Any = config.new_client_from_config
                    self._api = load(config_file=path, context=self._context)
                else:
                    configuration = client.Configuration()
                    load_incluster: Any = config.load_incluster_config
                    load_incluster(client_configuration=configuration)
                    self._api = client.ApiClient(configuration)
            except config.ConfigException as exc:
                raise ExecutorError(
                    f"cannot reach a Kubernetes cluster: no kubeconfig at {path} and not running in a pod ({exc})"
                ) from None
        return self._api

    def start(self, job: Job) -> KubernetesJob:
        from kubernetes import client

        body = job_body(job)
        namespace = body["metadata"]["namespace"]
        try:
            created = batch_api(self.api()).create_namespaced_job(namespace, body, _preload_content=False)
            data = json.loads(created.data)
        except client.ApiException as exc:
            raise ExecutorError(
                f"Kubernetes refused the job in namespace {namespace!r}: {api_message(exc)}"
            ) from None
        except (
            ValueError
        ) as exc:  # pydantic's ValidationError: the client checks the body against the API's models
            raise ExecutorError(f"the rendered job_manifest is not a valid batch/v1 Job: {exc}") from None
        infra = self._follow(data)
        for name in dropped_credentials(job.configuration):
            infra.say(
                f"{name} is not passed to the pod: a flow-run reports through the worker, never to the API"
            )
        return infra

    def reattach(self, run: FlowRun, infrastructure_id: str) -> KubernetesJob | None:
        """Follow the Job of `run` again (same id, same `wp.io/flow-run-id` label); None when it is gone. With
        no id (the worker died between creating the Job and recording it), the Job is looked up by that label in
        the worker's own namespace, so a run is never started twice."""
        from kubernetes import client

        namespace, _, name = infrastructure_id.partition("/")
        if not namespace or not name:
            return self._follow_by_label(run)
        try:
            found = batch_api(self.api()).read_namespaced_job(name, namespace, _preload_content=False)
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise ExecutorError(f"cannot read job {infrastructure_id}: {api_message(exc)}") from None
        data = json.loads(found.data)
        if (data["metadata"].get("labels") or {}).get(RUN_ID_LABEL) != label_value(run.id):
            return None
        return self._follow(data)

    def _follow_by_label(self, run: FlowRun) -> KubernetesJob | None:
        from kubernetes import client

        namespace = self.own_namespace()
        try:
            listed = batch_api(self.api()).list_namespaced_job(
                namespace, label_selector=f"{RUN_ID_LABEL}={label_value(run.id)}", _preload_content=False
            )
        except client.ApiException as exc:
            raise ExecutorError(
                f"cannot look for the job of run {run.id} in namespace {namespace!r}: {api_message(exc)}"
            ) from None
        items = [j for j in json.loads(listed.data)["items"] if not j["metadata"].get("deletionTimestamp")]
        return self._follow(items[0]) if items else None

    def own_namespace(self) -> str:
        """The namespace the worker works in: its kubeconfig context's, else its pod's, else `default`."""
        from kubernetes import config

        path = self._kubeconfig or os.environ.get("KUBECONFIG") or str(Path("~/.kube/config").expanduser())
        try:
            contexts: Any = config.list_kube_config_contexts
            _, active = contexts(config_file=path.split(os.pathsep)[0])
            if self._context:
                active = next((c for c in _ if c["name"] == self._context), active)
            return str(active["context"].get("namespace") or "default")
        except (config.ConfigException, OSError, KeyError, TypeError):
            pass
        pod_namespace = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
        with contextlib.suppress(OSError):
            return pod_namespace.read_text().strip() or "default"
        return "default"

    def _follow(self, data: Mapping[str, Any]) -> KubernetesJob:
        notes = data["metadata"].get("annotations") or {}
        pod_watch = timeout_of(
            notes.get(POD_WATCH_ANNOTATION), "pod_watch_timeout_seconds", DEFAULT_POD_WATCH_TIMEOUT
        )
        job_watch = timeout_of(notes.get(JOB_WATCH_ANNOTATION), "job_watch_timeout_seconds", None)
        created = parse_time(data["metadata"].get("creationTimestamp")) or time.time()
        infra = KubernetesJob(
            self.api(),
            data["metadata"]["namespace"],
            data["metadata"]["name"],
            created=created,
            pod_watch_timeout=pod_watch or DEFAULT_POD_WATCH_TIMEOUT,
            job_watch_timeout=job_watch,
            hopeless_grace=self._hopeless_grace,
            watch_seconds=self._watch_seconds,
            log_end_grace=self._log_end_grace,
        )
        infra.begin()
        return infra
