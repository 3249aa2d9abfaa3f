"""Tumbling event-time windows with allowed lateness, idle timeout and corrections.

The windower is pure: readings in, closed windows out, no I/O. A window
`[start, start + size)` closes when the watermark (the latest event time seen)
passes `end + allowed_lateness`, or, for quiet sensors, when it has been open on
the wall clock for `size + allowed_lateness + idle_timeout`. A reading for a window
already closed opens a correction of that window with the next revision; a
correction closes `correction_delay` after it opened, so a burst of late readings
becomes one message rather than many.

The hot loop is flat: each metric keeps a pointer to its current window's value
and timestamp lists, and a reading inside that window costs one dict lookup, a
range check, a finiteness check and two appends. Everything else (a new window,
a late or bad reading) takes the slow path, which validates and counts.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from edgebatch.edge.stats import MetricAccumulator, MetricStats
from edgebatch.edge.wire.limits import MAX_UNIT_LEN, METRIC_RE
from edgebatch.errors import ConfigError

log = logging.getLogger(__name__)

MAX_TS = 253_402_300_799.0  # 9999-12-31T23:59:59Z, the last time RFC 3339 can write
MAX_ABS_VALUE = 1e100
"""Beyond this, sums of squares (m2) over a window could overflow to infinity, which JSON
cannot carry: such a reading is refused rather than allowed to spoil its window."""
Reading = tuple[float, str, float, str | None]
"""`(ts, metric, value, unit)`: epoch seconds, metric name, value, unit or None."""


class Rejects:
    """Counts bad input by reason and logs it without flooding the log."""

    def __init__(self, logger: logging.Logger | None = None, every: int = 1000) -> None:
        self.counts: Counter[str] = Counter()
        self.quiet = False
        self._log = logger or log
        self._every = every

    def __call__(self, reason: str, detail: str) -> None:
        if self.quiet:
            return
        self.counts[reason] += 1
        n = self.counts[reason]
        if n <= 10 or n % self._every == 0:
            self._log.warning("rejected reading (%s, #%d): %s", reason, n, detail[:200])

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclasses.dataclass(frozen=True)
class WindowParams:
    """`[window]` of the agent's config, and what the windower runs on: tumbling windows by
    event time, in seconds. `fold_every` readings are buffered per metric before they are
    folded into the statistics and the sketch (bigger: faster, more memory)."""

    size_s: float = 60.0
    allowed_lateness_s: float = 5.0
    idle_timeout_s: float = 30.0
    correction_delay_s: float = 5.0
    max_future_s: float = 300.0
    max_past_s: float = 7 * 86400.0
    sketch_alpha: float = 0.01
    max_metrics: int = 256
    fold_every: int = 4096

    def validate(self) -> None:
        if self.size_s <= 0:
            raise ConfigError(f"key 'size_s' must be positive, got {self.size_s}")
        if not 0 < self.sketch_alpha < 1:
            raise ConfigError(f"key 'sketch_alpha' must be in (0, 1), got {self.sketch_alpha}")
        for key in (
            "allowed_lateness_s",
            "idle_timeout_s",
            "correction_delay_s",
            "max_future_s",
            "max_past_s",
        ):
            if getattr(self, key) < 0:
                raise ConfigError(f"key '{key}' must not be negative, got {getattr(self, key)}")
        for key in ("max_metrics", "fold_every"):
            if getattr(self, key) < 1:
                raise ConfigError(f"key '{key}' must be at least 1, got {getattr(self, key)}")


@dataclasses.dataclass
class ClosedWindow:
    """A window (or a correction of one) ready to be summarised and sent."""

    start: float
    end: float
    revision: int
    metrics: list[MetricStats]

    @property
    def count(self) -> int:
        return sum(m.count for m in self.metrics)


class _Window:
    __slots__ = ("start", "end", "revision", "accs", "opened", "first_offset")

    def __init__(self, start: float, end: float, revision: int, opened: float, offset: int):
        self.start = start
        self.end = end
        self.revision = revision
        self.accs: dict[str, MetricAccumulator] = {}
        self.opened = opened
        self.first_offset = offset

    def close(self) -> ClosedWindow:
        for acc in self.accs.values():
            acc.fold()
        stats = [self.accs[k].stats for k in sorted(self.accs)]
        return ClosedWindow(self.start, self.end, self.revision, [s for s in stats if s.count])


class Windower:
    """Turns readings into closed windows; see the module docstring for the rules."""

    def __init__(
        self,
        params: WindowParams,
        *,
        known_metrics: Mapping[str, str | None] | None = None,
        closed_revisions: Mapping[float, int] | None = None,
        rejects: Rejects | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.params = params
        self.known = dict(known_metrics) if known_metrics is not None else None
        self.rejects = rejects or Rejects()
        self._closed_rev: dict[float, int] = dict(closed_revisions or {})
        self._open: dict[float, _Window] = {}
        self._corrections: dict[float, _Window] = {}
        self._cur: dict[str, tuple[float, float, Any, Any]] = {}
        self._monotonic = monotonic
        self._wall = wall
        self._now_wall = wall()
        self._since_fold = 0
        self.watermark = -math.inf
        self._offset = 0

    # ------------------------------------------------------------ ingest

    def ingest(self, batch: Sequence[Reading], offset: int = 0) -> None:
        """Add a batch of readings; `offset` is where the batch sits in the journal."""
        self._now_wall = self._wall()
        self._offset = offset
        cur = self._cur
        slow = self._slow
        for ts, name, value, unit in batch:
            c = cur.get(name)
            try:
                if (
                    c is not None
                    and c[0] <= ts < c[1]
                    and value.__class__ is float
                    and -MAX_ABS_VALUE < value < MAX_ABS_VALUE
                ):
                    c[2](value)
                    c[3](ts)
                    continue
            except TypeError:
                pass
            slow(ts, name, value, unit)
        self._since_fold += len(batch)
        if self._since_fold >= self.params.fold_every:
            self.fold()

    def _slow(self, ts: Any, name: Any, value: Any, unit: Any) -> None:
        p = self.params
        if type(value) not in (float, int):
            self.rejects("not_numeric", f"{name!r}: value {value!r:.60} is not a number")
            return
        if type(value) is float and not math.isfinite(value):
            self.rejects("not_finite", f"{name!r}: value {value!r} is not finite")
            return
        if not -MAX_ABS_VALUE < value < MAX_ABS_VALUE:
            self.rejects(
                "out_of_range",
                f"{name!r}: |value| {value!r:.40} > {MAX_ABS_VALUE:g} would overflow",
            )
            return
        if type(ts) not in (float, int) or not 0.0 <= ts < MAX_TS:
            self.rejects("bad_timestamp", f"{name!r}: timestamp {ts!r:.60} is not a number")
            return
        if ts > self._now_wall + p.max_future_s:
            self.rejects(
                "too_far_future",
                f"{name!r}: {ts!r} is more than {p.max_future_s}s ahead of the clock",
            )
            return
        if ts < self._now_wall - p.max_past_s:
            self.rejects("too_far_past", f"{name!r}: {ts!r} is more than {p.max_past_s}s old")
            return
        if not isinstance(name, str) or not METRIC_RE.fullmatch(name):
            self.rejects("bad_metric_name", f"metric name {name!r:.80} is not allowed")
            return
        if self.known is not None and name not in self.known:
            self.rejects("unknown_metric", f"metric {name!r} is not configured")
            return
        if unit is not None and not (isinstance(unit, str) and 0 < len(unit) <= MAX_UNIT_LEN):
            self.rejects("bad_unit", f"{name!r}: unit {unit!r:.60} is not a short string")
            return
        start = self.window_start(ts)
        end = start + p.size_s
        rev = self._closed_rev.get(start)
        if rev is not None:
            window = self._corrections.get(start)
            if window is None:
                window = _Window(start, end, rev + 1, self._monotonic(), self._offset)
                self._corrections[start] = window
        else:
            window = self._open.get(start)
            if window is None:
                window = _Window(start, end, 0, self._monotonic(), self._offset)
                self._open[start] = window
        acc = window.accs.get(name)
        if acc is None:
            if len(window.accs) >= p.max_metrics:
                self.rejects("too_many_metrics", f"window already has {p.max_metrics} metrics")
                return
            if unit is None and self.known is not None:
                unit = self.known.get(name)
            acc = MetricAccumulator(name, unit, p.sketch_alpha)
            window.accs[name] = acc
        acc.values.append(float(value))
        acc.timestamps.append(float(ts))
        if rev is None:
            self._cur[name] = (start, end, acc.values.append, acc.timestamps.append)
        if ts > self.watermark:
            self.watermark = float(ts)

    def window_start(self, ts: float) -> float:
        """The start of `ts`'s window, rounded to the microsecond so that fractional sizes give
        the same start (and so the same batch_id) every time; then nudged so start <= ts."""
        size = self.params.size_s
        start = round(math.floor(ts / size) * size, 6)
        if ts < start:
            start = round(start - size, 6)
        elif ts >= start + size:
            start = round(start + size, 6)
        return start

    def fold(self) -> None:
        """Fold buffered values into the mergeable state, bounding memory."""
        for group in (self._open, self._corrections):
            for window in group.values():
                for acc in window.accs.values():
                    acc.fold()
        self._since_fold = 0

    # ------------------------------------------------------------ closing

    def due(self) -> list[ClosedWindow]:
        """Windows and corrections whose time has come, oldest first."""
        p = self.params
        now = self._monotonic()
        for window in self._open.values():
            for acc in window.accs.values():
                # The fast path appends without touching the watermark; catch up here, from
                # the folded state too, since a fold may just have emptied the buffer.
                latest = acc.timestamps[-1] if acc.timestamps else acc.stats.last_ts
                if latest > self.watermark:
                    self.watermark = latest
        out: list[ClosedWindow] = []
        quiet = p.size_s + p.allowed_lateness_s + p.idle_timeout_s
        for start in sorted(self._open):
            window = self._open[start]
            if self.watermark >= window.end + p.allowed_lateness_s or now - window.opened >= quiet:
                del self._open[start]
                for name in list(window.accs):
                    c = self._cur.get(name)
                    if c is not None and c[0] == start:
                        del self._cur[name]
                closed = window.close()
                if closed.metrics:  # a window of rejects only was never sent: no revision
                    self._closed_rev[start] = 0
                    out.append(closed)
        for start in sorted(self._corrections):
            window = self._corrections[start]
            if now - window.opened >= p.correction_delay_s:
                del self._corrections[start]
                closed = window.close()
                self._closed_rev[start] = window.revision
                if closed.metrics:
                    out.append(closed)
        return out

    def prune(self, keep_after: float) -> None:
        """Forget revisions of windows that started before `keep_after` (too old to correct)."""
        for start in [s for s in self._closed_rev if s < keep_after]:
            del self._closed_rev[start]

    def low_water_offset(self) -> int | None:
        """The journal offset of the oldest reading still held in memory, if any."""
        offsets = [w.first_offset for g in (self._open, self._corrections) for w in g.values()]
        return min(offsets) if offsets else None

    @property
    def open_windows(self) -> int:
        return len(self._open) + len(self._corrections)
