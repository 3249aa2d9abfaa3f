"""A mergeable quantile sketch with a relative-error bound, fed in chunks.

The mapping is DDSketch's logarithmic one (the same keys and bucket values as the
`ddsketch` library, so its quantiles agree with it): with relative accuracy
`alpha`, `gamma = 1 + 2*alpha/(1-alpha)`, a positive value `v` goes to bucket
`ceil(ln v / ln gamma)`, and bucket `k` stands for `gamma**k * 2/(1+gamma)`,
which is within `alpha` (relative) of every value in it. Negative values use a
second store keyed by `|v|`; values too small to index count as zero.

It exists beside the library because the agent's hot path adds values a chunk at
a time: keys for a whole chunk are computed with C-level `map` and counted with
`Counter`, several times faster than one `DDSketch.add` call per value. Two
sketches with the same `alpha` merge by adding bucket counts, exactly, which is
what lets the warehouse roll windows up into days.
"""

from __future__ import annotations

import math
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from itertools import repeat
from operator import mul
from typing import Any


class QuantileSketch:
    """Bucket counts over a logarithmic mapping; `add_many`, `merge`, `quantile`, `to_wire`."""

    __slots__ = ("alpha", "gamma", "_mult", "_min_indexable", "pos", "neg", "zero", "count")

    def __init__(self, alpha: float = 0.01) -> None:
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"sketch relative accuracy must be in (0, 1), got {alpha!r}")
        self.alpha = alpha
        mantissa = 2 * alpha / (1 - alpha)
        self.gamma = 1 + mantissa
        self._mult = 1 / math.log1p(mantissa)
        self._min_indexable = sys.float_info.min * self.gamma
        self.pos: Counter[int] = Counter()
        self.neg: Counter[int] = Counter()
        self.zero = 0
        self.count = 0

    def add_many(self, values: Sequence[float]) -> None:
        """Add finite values; the caller has already rejected NaN and infinities."""
        if not values:
            return
        tiny = self._min_indexable
        mult = self._mult
        if min(values) > tiny:
            self.pos.update(map(math.ceil, map(mul, map(math.log, values), repeat(mult))))
        else:
            pos = [v for v in values if v > tiny]
            neg = [-v for v in values if v < -tiny]
            if pos:
                self.pos.update(map(math.ceil, map(mul, map(math.log, pos), repeat(mult))))
            if neg:
                self.neg.update(map(math.ceil, map(mul, map(math.log, neg), repeat(mult))))
            self.zero += len(values) - len(pos) - len(neg)
        self.count += len(values)

    def merge(self, other: QuantileSketch) -> None:
        """Add another sketch's counts; both must share `alpha` or the bounds would not hold."""
        if other.alpha != self.alpha:
            raise ValueError(f"cannot merge sketches of accuracy {self.alpha} and {other.alpha}")
        self.pos.update(other.pos)
        self.neg.update(other.neg)
        self.zero += other.zero
        self.count += other.count

    def copy(self) -> QuantileSketch:
        out = QuantileSketch(self.alpha)
        out.merge(self)
        return out

    def _value(self, key: int) -> float:
        return math.pow(self.gamma, key) * (2.0 / (1 + self.gamma))

    def quantile(self, q: float) -> float | None:
        """The value at quantile `q`: within `alpha` of the exact element of rank floor(q(n-1))."""
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile must be in [0, 1], got {q!r}")
        if self.count == 0:
            return None
        rank = q * (self.count - 1)
        neg_count = sum(self.neg.values())
        if rank < neg_count:
            running = 0
            for key in sorted(self.neg, reverse=True):
                running += self.neg[key]
                if running > rank:
                    return -self._value(key)
        if rank < neg_count + self.zero:
            return 0.0
        rank -= neg_count + self.zero
        running = 0
        key = 0
        for key in sorted(self.pos):
            running += self.pos[key]
            if running > rank:
                break
        return self._value(key)

    def to_wire(self) -> dict[str, Any]:
        """The wire form: `{"alpha", "pos"?: {"start", "counts"}, "neg"?, "zero"?}`."""
        out: dict[str, Any] = {"alpha": self.alpha}
        if self.pos:
            out["pos"] = _dense(self.pos)
        if self.neg:
            out["neg"] = _dense(self.neg)
        if self.zero:
            out["zero"] = self.zero
        return out

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> QuantileSketch:
        """Rebuild from `to_wire` output; the message parser has checked the shape already."""
        out = cls(float(data["alpha"]))
        for side in ("pos", "neg"):
            store = data.get(side)
            if store:
                counter = out.pos if side == "pos" else out.neg
                start = store["start"]
                for i, c in enumerate(store["counts"]):
                    if c:
                        counter[start + i] = c
        out.zero = int(data.get("zero", 0))
        out.count = sum(out.pos.values()) + sum(out.neg.values()) + out.zero
        return out

    @classmethod
    def of(cls, values: Iterable[float], alpha: float = 0.01) -> QuantileSketch:
        out = cls(alpha)
        out.add_many(list(values))
        return out


def _dense(counter: Mapping[int, int]) -> dict[str, Any]:
    keys = [k for k, c in counter.items() if c]
    lo, hi = min(keys), max(keys)
    counts = [0] * (hi - lo + 1)
    for k in keys:
        counts[k - lo] = counter[k]
    return {"start": lo, "counts": counts}
