"""What a Kubernetes Job's and pod's status say, read from the API's JSON: whether the Job ended (its
`Complete`/`Failed` condition), what a pod's container is waiting for or how it ended, which pod is the latest,
and the API's timestamps (RFC3339, and the kubelet's RFC3339Nano log timestamps in a form that sorts as text).

Pure functions over dicts: must never call the API, read the clock or keep state.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any


def parse_time(text: Any) -> float | None:
    if not isinstance(text, str) or not text:
        return None
    whole, _, frac = text.rstrip("Z").partition(".")
    try:
        base = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None
    return base + (float("0." + frac) if frac.isdigit() else 0.0)


def log_timestamp_key(text: str) -> str:
    """An RFC3339Nano timestamp in a form that sorts as text (the kubelet trims trailing zeros)."""
    whole, _, frac = text.rstrip("Z").partition(".")
    return f"{whole}.{frac.ljust(9, '0')}"


def log_datetime(stamp: str) -> datetime | None:
    seconds = parse_time(stamp)
    return datetime.fromtimestamp(seconds, UTC) if seconds is not None else None


def container_state(pod: Mapping[str, Any]) -> dict[str, Any]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return dict(statuses[0].get("state") or {}) if statuses else {}


def waiting_reason(pod: Mapping[str, Any]) -> tuple[str, str] | None:
    waiting = container_state(pod).get("waiting")
    if not waiting:
        return None
    return str(waiting.get("reason") or "Waiting"), str(waiting.get("message") or "")


def terminated_state(pod: Mapping[str, Any]) -> dict[str, Any] | None:
    terminated = container_state(pod).get("terminated")
    return dict(terminated) if terminated else None


def container_started(pod: Mapping[str, Any]) -> bool:
    state = container_state(pod)
    return bool(state.get("running") or state.get("terminated"))


def latest_pod(pods: Mapping[str, dict[str, Any]]) -> dict[str, Any] | None:
    if not pods:
        return None
    return max(
        pods.values(), key=lambda p: (p["metadata"].get("creationTimestamp") or "", container_started(p))
    )


def job_outcome(job: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """("Complete" | "Failed", reason, message) once the Job has ended."""
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            return (
                str(condition["type"]),
                str(condition.get("reason") or ""),
                str(condition.get("message") or ""),
            )
    return None
