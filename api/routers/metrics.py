"""`/metrics` for Prometheus: runs by state, iteration durations, queue depth, the
collector's backlog, devices online, workers alive, and the HTTP ingest's counts.

Figures are read from the state store and the landing zone at scrape time and cached
for `CACHE_S`, so a scraper every few seconds costs the store a few small queries.
Needs a viewer token unless `[api] metrics_public` is true.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool

from edgebatch.api.access import MetricsGuard, Principal
from edgebatch.api.deps import Runtime
from edgebatch.api.runtime import ApiRuntime
from edgebatch.framework.state.base import DEFAULT_WORKER_TTL

router = APIRouter(tags=["metrics"])

CACHE_S = 5.0
BUCKETS = (1, 5, 15, 60, 300, 900, 3600, 4 * 3600, float("inf"))
STATES = ("queued", "running", "succeeded", "failed", "cancelled", "skipped")


class StoreCollector(Collector):
    def __init__(self, rt: ApiRuntime) -> None:
        self.rt = rt

    def collect(self) -> Iterator[Metric]:
        rt, store = self.rt, self.rt.store
        by_state = store.count_runs_by_state()
        runs = GaugeMetricFamily(
            "edgebatch_runs", "Runs in the state store by state", labels=["state"]
        )
        for state in STATES:
            runs.add_metric([state], by_state.get(state, 0))
        yield runs
        durations = store.iteration_seconds_since(store.now() - timedelta(hours=1))
        counts = [sum(1 for d in durations if d <= b) for b in BUCKETS]
        hist = HistogramMetricFamily(
            "edgebatch_iteration_duration_seconds",
            "Iterations that ended in the last hour, by duration",
        )
        hist.add_metric(
            [],
            [
                (str(b) if b != float("inf") else "+Inf", c)
                for b, c in zip(BUCKETS, counts, strict=True)
            ],
            sum(durations),
        )
        yield hist
        depth = GaugeMetricFamily(
            "edgebatch_queue_depth", "Runs waiting and running per queue", labels=["queue", "state"]
        )
        for q in store.queue_depths():
            depth.add_metric([q.queue, "queued"], q.queued)
            depth.add_metric([q.queue, "running"], q.running)
        yield depth
        now = store.now()
        alive = sum(
            1
            for w in store.list_workers(state="running")
            if (now - w.heartbeat_at) <= DEFAULT_WORKER_TTL
        )
        yield GaugeMetricFamily("edgebatch_workers_alive", "Workers beating", value=alive)
        yield from self._backlog()
        if rt.status is not None:
            online = sum(1 for state, _ in rt.status.snapshot().values() if state == "online")
            yield GaugeMetricFamily(
                "edgebatch_devices_online", "Devices whose status topic says online", value=online
            )
        yield GaugeMetricFamily(
            "edgebatch_ingest_messages",
            "Messages landed by the HTTP ingest since start",
            value=rt.ingested,
        )
        yield GaugeMetricFamily(
            "edgebatch_ingest_quarantined",
            "Messages the HTTP ingest refused since start",
            value=rt.ingest_quarantined,
        )

    def _backlog(self) -> Iterator[Metric]:
        from edgebatch.warehouse.landing.loads import backlog

        try:
            b = backlog(self.rt.zone())
        except Exception:  # the landing zone unreachable: no figure rather than no metrics
            return
        files = GaugeMetricFamily(
            "edgebatch_collector_backlog_files", "Landed files not yet loaded", labels=["kind"]
        )
        for kind, n in sorted(b.by_kind.items()):
            files.add_metric([kind], n)
        yield files
        yield GaugeMetricFamily(
            "edgebatch_collector_backlog_bytes", "Bytes landed not yet loaded", value=b.bytes
        )
        yield GaugeMetricFamily(
            "edgebatch_collector_backlog_oldest_seconds",
            "Age of the oldest file not yet loaded",
            value=b.oldest_age_s or 0.0,
        )


def _scrape(rt: ApiRuntime) -> bytes:
    cached = rt.metrics_cache
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(rt))
    body = generate_latest(registry)
    rt.metrics_cache = (time.monotonic() + CACHE_S, body)
    return body


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(
    principal: Annotated[Principal, Depends(MetricsGuard())], rt: Runtime
) -> Response:
    body = await run_in_threadpool(_scrape, rt)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
