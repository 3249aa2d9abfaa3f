"""The summary codec: a metric's mergeable window state to its wire dict and back.

The agent writes each closed window's metrics with `metric_summary`, and when its
outbox is full it merges never-sent windows (`merge_summaries`): the wire dict carries
all the mergeable state, so a merge from it is as exact as one from the live windows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from edgebatch.edge.sketch import QuantileSketch
from edgebatch.edge.stats import MetricStats
from edgebatch.edge.wire.times import format_ts, parse_ts


def _q(x: float | None) -> float:
    """Quantiles are approximations within alpha: six significant digits are plenty."""
    return float(f"{x:.6g}") if x is not None else 0.0


def metric_summary(stats: MetricStats) -> dict[str, Any]:
    """The wire dict of one metric's window state (the fields of `wire.MetricSummary`)."""
    sk = stats.sketch
    p50, p95, p99 = _q(sk.quantile(0.5)), _q(sk.quantile(0.95)), _q(sk.quantile(0.99))
    out: dict[str, Any] = {"name": stats.name}
    if stats.unit is not None:
        out["unit"] = stats.unit
    out.update(
        count=stats.count,
        sum=stats.sum,
        min=stats.min,
        max=stats.max,
        mean=float(f"{stats.mean:.12g}"),  # derivable (sum / count): a shorter form will do
        m2=stats.m2,
        stddev=float(f"{stats.stddev:.9g}"),  # derivable from m2 and count likewise
        p50=p50,
        p95=p95,
        p99=p99,
        sketch=sk.to_wire(),
        first_ts=format_ts(stats.first_ts),
        last_ts=format_ts(stats.last_ts),
    )
    return out


def stats_from_summary(d: Mapping[str, Any]) -> MetricStats:
    """Rebuild the mergeable state from a wire dict (used to coarsen unsent summaries)."""
    sketch = QuantileSketch.from_wire(d["sketch"])
    s = MetricStats(d["name"], d.get("unit"), sketch.alpha)
    s.count, s.sum, s.min, s.max = d["count"], d["sum"], d["min"], d["max"]
    s.mean, s.m2, s.sketch = d["mean"], d["m2"], sketch
    s.first_ts, s.last_ts = parse_ts(d["first_ts"]), parse_ts(d["last_ts"])
    return s


def merge_summaries(groups: Iterable[Iterable[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """Merge several windows' metric lists into one, metric by metric, exactly for count, sum,
    min and max, with Chan's formula for m2 and bucket addition for the sketch."""
    merged: dict[str, MetricStats] = {}
    for metrics in groups:
        for d in metrics:
            s = stats_from_summary(d)
            if s.name in merged:
                merged[s.name].merge(s)
            else:
                merged[s.name] = s
    return [metric_summary(merged[k]) for k in sorted(merged)]
