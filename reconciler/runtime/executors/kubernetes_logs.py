"""Following one pod's log into a run's events, resumed after a dropped connection with no line lost or doubled.

Owns the log side of a Kubernetes run: a followed stream (`follow=true`) with the kubelet's timestamps on every
line; when the stream drops before the pod has ended, a new one from the last timestamp shipped (`sinceTime`),
skipping the lines before it and, at that exact timestamp, as many lines as were already shipped. Each line
goes through the container runner's parser, so the runner's marked state lines become state reports.

Must never decide a run's state; the caller says when to stop and whether the pod has ended.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from reconciler.runtime.executors.base import Event
from reconciler.runtime.executors.container import parse_line
from reconciler.runtime.executors.kubernetes_status import log_datetime, log_timestamp_key


def follow_pod_log(
    api: Any,
    namespace: str,
    pod: str,
    *,
    emit: Callable[[Event], None],
    keep_going: Callable[[], bool],
    ended: Callable[[], bool],
) -> None:
    """Emit every line of `pod`'s log once, in order, until the log is complete and the pod `ended()` (or the
    pod is gone, or not `keep_going()`)."""
    from kubernetes import client

    last: str | None = None  # the sortable timestamp of the last line shipped
    at_last = 0  # how many lines carried exactly that timestamp
    delay = 0.2
    while keep_going():
        try:
            resp = open_log(api, namespace, pod, last)
            skip = at_last
            for raw in _lines(resp):
                stamp, _, text = raw.partition(" ")
                key = log_timestamp_key(stamp)
                if last is not None and key < last:
                    continue
                if last is not None and key == last and skip > 0:
                    skip -= 1
                    continue
                if key == last:
                    at_last += 1
                else:
                    last, at_last = key, 1
                for event in parse_line("stdout", text, log_datetime(stamp)):
                    emit(event)
            delay = 0.2
            if ended():
                return
            time.sleep(0.2)  # the stream ended while the container runs: an API server closed it
        except client.ApiException as exc:
            if exc.status == 404:
                return
            time.sleep(delay)  # 400 while the container still waits to start, or a server error
            delay = min(delay * 2, 2.0)
        except Exception:  # a dropped connection: reconnect from the last timestamp
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


def open_log(api: Any, namespace: str, pod: str, since: str | None) -> Any:
    """A followed, timestamped log stream (urllib3 response). The generated client has no `sinceTime`
    parameter, so the request is made with the client's own serializer and auth, as its methods do."""
    from kubernetes import client

    query: list[tuple[str, Any]] = [("follow", True), ("timestamps", True)]
    if since is not None:
        query.append(("sinceTime", since.rstrip("0").rstrip(".") + "Z"))
    request = api.param_serialize(
        method="GET",
        resource_path="/api/v1/namespaces/{namespace}/pods/{name}/log",
        path_params={"namespace": namespace, "name": pod},
        query_params=query,
        header_params={"Accept": "text/plain"},
        auth_settings=["BearerToken"],
    )
    response = api.call_api(*request, _request_timeout=None)
    if not 200 <= response.status <= 299:
        response.read()
        raise client.ApiException.from_response(http_resp=response, body=None, data=None)
    return response.response


def _lines(resp: Any) -> Iterator[str]:
    from kubernetes.watch import watch

    try:
        lines: Iterator[str] = watch.iter_resp_lines(resp)  # type: ignore[no-untyped-call]
        for line in lines:
            if line:
                yield line
    finally:
        resp.release_conn()
