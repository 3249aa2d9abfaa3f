"""Per-metric window statistics: exact count/sum/min/max, stable variance, a quantile sketch.

`MetricStats` is the mergeable state the wire carries (`m2` is the sum of squared
deviations from the mean). It is fed a chunk at a time: a chunk's own mean and
m2 come from two passes over the chunk (stable), and chunks combine with Chan's
parallel formula, the same one the warehouse uses to roll windows up. Adding a
chunk instead of a value keeps the agent's hot loop down to two list appends
per reading.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from operator import mul

from edgebatch.edge.sketch import QuantileSketch


class MetricStats:
    """Mergeable statistics of one metric over one window (or several merged ones)."""

    __slots__ = (
        "name",
        "unit",
        "count",
        "sum",
        "min",
        "max",
        "mean",
        "m2",
        "sketch",
        "first_ts",
        "last_ts",
    )

    def __init__(self, name: str, unit: str | None = None, alpha: float = 0.01) -> None:
        self.name = name
        self.unit = unit
        self.count = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf
        self.mean = 0.0
        self.m2 = 0.0
        self.sketch = QuantileSketch(alpha)
        self.first_ts = math.inf
        self.last_ts = -math.inf

    def add_chunk(self, values: Sequence[float], timestamps: Sequence[float]) -> None:
        """Fold a chunk of finite values (and their event times) into the state."""
        n = len(values)
        if not n:
            return
        s = math.fsum(values)
        mean = s / n
        dev = [x - mean for x in values]
        m2 = math.fsum(map(mul, dev, dev))
        self._combine(n, s, mean, m2, min(values), max(values))
        self.sketch.add_many(values)
        lo, hi = min(timestamps), max(timestamps)
        if lo < self.first_ts:
            self.first_ts = lo
        if hi > self.last_ts:
            self.last_ts = hi

    def _combine(self, n: int, s: float, mean: float, m2: float, lo: float, hi: float) -> None:
        na = self.count
        if na == 0:
            self.count, self.sum, self.mean, self.m2 = n, s, mean, m2
        else:
            total = na + n
            delta = mean - self.mean
            self.m2 = self.m2 + m2 + delta * delta * na * n / total
            self.mean = self.mean + delta * n / total
            self.count = total
            self.sum += s
        if lo < self.min:
            self.min = lo
        if hi > self.max:
            self.max = hi

    def merge(self, other: MetricStats) -> None:
        """Combine another window's state of the same metric (coarsening, corrections)."""
        if other.count == 0:
            return
        self._combine(other.count, other.sum, other.mean, other.m2, other.min, other.max)
        self.sketch.merge(other.sketch)
        self.first_ts = min(self.first_ts, other.first_ts)
        self.last_ts = max(self.last_ts, other.last_ts)
        if self.unit is None:
            self.unit = other.unit

    @property
    def variance(self) -> float:
        """Sample variance (n - 1), 0 for a single value."""
        return self.m2 / (self.count - 1) if self.count > 1 else 0.0

    @property
    def stddev(self) -> float:
        return math.sqrt(self.variance)


class MetricAccumulator:
    """Buffers raw values of one metric in one window and folds them into `MetricStats`.

    The hot loop appends to `values` and `timestamps` directly (bound methods kept
    by the windower); `fold` runs every few thousand readings and at close.
    """

    __slots__ = ("stats", "values", "timestamps")

    def __init__(self, name: str, unit: str | None, alpha: float) -> None:
        self.stats = MetricStats(name, unit, alpha)
        self.values: list[float] = []
        self.timestamps: list[float] = []

    def fold(self) -> None:
        if self.values:
            self.stats.add_chunk(self.values, self.timestamps)
            self.values.clear()
            self.timestamps.clear()

    def __len__(self) -> int:
        return self.stats.count + len(self.values)
