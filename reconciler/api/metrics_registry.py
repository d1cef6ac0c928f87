"""The Prometheus side of `GET /metrics`: one registry per app, its instruments, and the collector that reads
the store at each scrape (runs by state per pool and queue, late runs, slots used and limits, workers online, the
sync status records, the scheduler's lag).

Imported by `reconciler.api.metrics` on first use (the first claim, apply, sync pass or scrape), so a server
that is never scraped and has run nothing does not load prometheus_client. Must never write the store.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from reconciler.states import SLOT_STATES, RunState
from reconciler.store.base import Store, SyncPhase

if TYPE_CHECKING:
    from reconciler.api.metrics import ServerMetrics

CLAIM_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)
_SLOT_STATES = {s.value for s in SLOT_STATES}


class Instruments:
    """The registry of one app and the instruments its routes and threads update."""

    def __init__(self, store: Store, metrics: ServerMetrics) -> None:
        self.registry = CollectorRegistry()
        self.claim_latency = Histogram(
            "wp_claim_latency_seconds",
            "Seconds from a run's expected start to its claim by a worker (claims through this server).",
            buckets=CLAIM_BUCKETS,
            registry=self.registry,
        )
        self.applies = Counter(
            "wp_applies", "Applies through this server, by outcome.", ["outcome"], registry=self.registry
        )
        self.sync_passes = Counter(
            "wp_sync_passes",
            "Passes of the sync loop this server runs, by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        self.registry.register(_StoreCollector(store, metrics))

    def exposition(self) -> tuple[bytes, str]:
        """The registry in Prometheus text format, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _StoreCollector(Collector):
    def __init__(self, store: Store, metrics: ServerMetrics) -> None:
        self.store = store
        self.metrics = metrics

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from self._runs()
        yield from self._workers()
        yield from self._scheduler()
        yield from self._sync()

    def _runs(self) -> Iterable[GaugeMetricFamily]:
        grouped = getattr(self.store, "count_runs_grouped", None)
        limits = getattr(self.store, "concurrency_limits", None)
        if grouped is None or limits is None:
            return
        runs = GaugeMetricFamily(
            "wp_flow_runs", "Flow runs by state.", labels=["work_pool", "work_queue", "state"]
        )
        late = GaugeMetricFamily("wp_late_runs", "Runs in state LATE.", labels=["work_pool", "work_queue"])
        pool_used: dict[str, int] = defaultdict(int)
        queue_used: dict[tuple[str, str], int] = defaultdict(int)
        for (pool, queue, state), n in sorted(grouped().items()):
            runs.add_metric([pool, queue, state], n)
            if state == RunState.LATE.value:
                late.add_metric([pool, queue], n)
            if state in _SLOT_STATES:
                pool_used[pool] += n
                queue_used[(pool, queue)] += n
        pool_limits, queue_limits = limits()
        used = GaugeMetricFamily(
            "wp_work_pool_slots_used", "Runs holding a slot of the pool.", labels=["work_pool"]
        )
        limit = GaugeMetricFamily(
            "wp_work_pool_concurrency_limit", "The pool's limit (absent: none).", labels=["work_pool"]
        )
        for pool in sorted(pool_limits):
            used.add_metric([pool], pool_used.get(pool, 0))
            if pool_limits[pool] is not None:
                limit.add_metric([pool], float(pool_limits[pool] or 0))
        q_used = GaugeMetricFamily(
            "wp_work_queue_slots_used",
            "Runs holding a slot of the queue.",
            labels=["work_pool", "work_queue"],
        )
        q_limit = GaugeMetricFamily(
            "wp_work_queue_concurrency_limit",
            "The queue's limit (absent: none).",
            labels=["work_pool", "work_queue"],
        )
        for key in sorted(queue_limits):
            q_used.add_metric(list(key), queue_used.get(key, 0))
            if queue_limits[key] is not None:
                q_limit.add_metric(list(key), float(queue_limits[key] or 0))
        yield from (runs, late, used, limit, q_used, q_limit)

    def _workers(self) -> Iterable[GaugeMetricFamily]:
        online = getattr(self.store, "count_workers_online", None)
        if online is None:
            return
        family = GaugeMetricFamily("wp_workers_online", "Workers heartbeating in time.", labels=["work_pool"])
        for pool, n in sorted(online(datetime.now(UTC)).items()):
            family.add_metric([pool], n)
        yield family

    def _scheduler(self) -> Iterable[GaugeMetricFamily]:
        m = self.metrics
        if m.scheduler_last_tick is None or m.scheduler_interval is None:
            return
        lag = max(0.0, time.time() - m.scheduler_last_tick - m.scheduler_interval)
        yield GaugeMetricFamily(
            "wp_scheduler_lag_seconds", "How late the scheduler's next tick is (0 when on time).", value=lag
        )
        yield GaugeMetricFamily(
            "wp_scheduler_last_tick_timestamp_seconds",
            "Unix time the scheduler last started a tick.",
            value=m.scheduler_last_tick,
        )

    def _sync(self) -> Iterable[GaugeMetricFamily]:
        labels = ["repo", "branch", "path"]
        phase = GaugeMetricFamily(
            "wp_sync_phase", "1 for the sync's current phase.", labels=[*labels, "phase"]
        )
        success = GaugeMetricFamily(
            "wp_sync_last_success_timestamp_seconds", "Unix time of the last successful sync.", labels=labels
        )
        failures = GaugeMetricFamily(
            "wp_sync_consecutive_failures", "Failed attempts since the last success.", labels=labels
        )
        attempts = GaugeMetricFamily(
            "wp_sync_recent_attempts",
            "Outcomes among the last 10 attempts.",
            labels=[*labels, "result"],
        )
        for s in self.store.list_sync_status():
            key = [s.key.repo, s.key.branch, s.key.path]
            for p in SyncPhase:
                phase.add_metric([*key, p.value], 1.0 if s.phase is p else 0.0)
            if s.last_success_at is not None:
                success.add_metric(key, s.last_success_at.timestamp())
            failures.add_metric(key, s.failures)
            results: dict[str, int] = defaultdict(int)
            for a in s.attempts:
                results[str(a.get("result", ""))] += 1
            for result, n in sorted(results.items()):
                attempts.add_metric([*key, result], n)
        yield from (phase, success, failures, attempts)
