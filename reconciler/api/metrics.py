"""`GET /metrics`: the server's Prometheus metrics (SPEC §9), with prometheus_client.

Owns the route and `ServerMetrics`, what this process observes (claim latency of claims made through it,
applies through it, passes of the sync loop it runs, the scheduler's lag) and hands to the registry in
`reconciler.api.metrics_registry`, which also reads the store's gauges at each scrape. That registry and
prometheus_client are loaded on first use, not at start-up. Behind the API key like every route but `/health`.
Must never write the store.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request, Response

from reconciler.model import FlowRun
from reconciler.store.base import Store

if TYPE_CHECKING:
    from prometheus_client import Counter, Histogram

    from reconciler.api.metrics_registry import Instruments

router = APIRouter(tags=["metrics"])


class ServerMetrics:
    """What one app observes; the Prometheus instruments behind it are made on first use."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.scheduler_interval: float | None = None
        self.scheduler_last_tick: float | None = None  # time.time() at the start of the last tick
        self._instruments: Instruments | None = None
        self._lock = threading.Lock()  # routes run in threadpool threads, the sync loop in its own

    @property
    def instruments(self) -> Instruments:
        if self._instruments is None:
            with self._lock:
                if self._instruments is None:
                    from reconciler.api.metrics_registry import Instruments

                    self._instruments = Instruments(self.store, self)
        return self._instruments

    @property
    def applies(self) -> Counter:
        return self.instruments.applies

    @property
    def sync_passes(self) -> Counter:
        return self.instruments.sync_passes

    @property
    def claim_latency(self) -> Histogram:
        return self.instruments.claim_latency

    def observe_claims(self, runs: Sequence[FlowRun], now: datetime) -> None:
        if not runs:  # an idle worker's empty claims load nothing
            return
        histogram = self.claim_latency
        for run in runs:
            histogram.observe(max(0.0, (now - run.expected_start_time).total_seconds()))

    def scheduler_ticked(self) -> None:
        self.scheduler_last_tick = time.time()


def server_metrics(request: Request) -> ServerMetrics:
    metrics: ServerMetrics = request.app.state.metrics
    return metrics


@router.get("/metrics", response_class=Response)
def get_metrics(request: Request) -> Response:
    """Prometheus text format. With WP_API_KEY set, the scraper sends `Authorization: Bearer <key>`."""
    body, content_type = server_metrics(request).instruments.exposition()
    return Response(body, media_type=content_type)


def install(app: Any) -> None:
    app.state.metrics = ServerMetrics(app.state.store)
    app.include_router(router)
