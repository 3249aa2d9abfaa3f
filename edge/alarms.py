"""Alarm rules, evaluated per reading and published at once, with hysteresis.

Three kinds, one small contract (`check(ts, value) -> event or None`), pure and
testable without MQTT; an event is the wire's own `AlarmEvent`, which the agent
sends as it is:

- `threshold`: above `above` or below `below`;
- `rate`: the absolute change per second between consecutive readings exceeds
  `max_rate_per_s`;
- `zscore`: the reading is more than `z` standard deviations from a rolling
  baseline (exponentially weighted over about `baseline_n` readings, frozen while
  the alarm is raised so the anomaly does not become the new normal).

Hysteresis: a raised alarm clears only once the value is back inside the limit
by `hysteresis` (in the rule's own units: value, rate, or z), so a value that
flaps around a limit raises one alarm and one clear, not hundreds.

The rules' memory (raised or not, the limit a raise crossed, the baseline) is a
plain JSON value (`AlarmEngine.snapshot`/`restore`) that the agent keeps with its
outbox checkpoint: after a restart a raised alarm stays raised, and is cleared
once, instead of being raised again.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from edgebatch.edge.window import MAX_ABS_VALUE, MAX_TS
from edgebatch.edge.wire.types import AlarmEvent
from edgebatch.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class AlarmRule:
    """One rule from the config (`[[alarm]]`)."""

    name: str
    metric: str
    kind: Literal["threshold", "rate", "zscore"] = "threshold"
    above: float | None = None
    below: float | None = None
    max_rate_per_s: float | None = None
    z: float = 4.0
    baseline_n: int = 300
    min_samples: int = 30
    hysteresis: float = 0.0
    severity: Literal["info", "warning", "critical"] = "warning"

    def validate(self) -> None:
        from edgebatch.edge.wire import METRIC_RE

        if not 0 < len(self.name) <= 64:
            raise ConfigError(f"alarm name {self.name!r} must be 1 to 64 characters")
        if not METRIC_RE.fullmatch(self.metric):
            raise ConfigError(f"alarm '{self.name}': metric {self.metric!r} is not a metric name")
        if self.kind == "threshold" and self.above is None and self.below is None:
            raise ConfigError(f"alarm '{self.name}': a threshold rule needs 'above' or 'below'")
        if self.kind == "rate" and (self.max_rate_per_s is None or self.max_rate_per_s <= 0):
            raise ConfigError(f"alarm '{self.name}': a rate rule needs 'max_rate_per_s' > 0")
        if self.kind == "zscore" and (self.z <= 0 or self.baseline_n < 2):
            raise ConfigError(f"alarm '{self.name}': a zscore rule needs z > 0, baseline_n >= 2")
        if self.hysteresis < 0:
            raise ConfigError(f"alarm '{self.name}': 'hysteresis' must not be negative")


class RuleState:
    """One rule's memory: whether it is raised, the previous reading, the baseline."""

    __slots__ = ("rule", "raised", "prev_ts", "prev_value", "n", "mean", "var", "limit")
    _SAVED = ("raised", "prev_ts", "prev_value", "n", "mean", "var", "limit")

    def __init__(self, rule: AlarmRule) -> None:
        self.rule = rule
        self.raised = False
        self.prev_ts: float | None = None
        self.prev_value = 0.0
        self.n = 0
        self.mean = 0.0
        self.var = 0.0
        self.limit: float | None = None

    def snapshot(self) -> dict[str, Any]:
        saved = {key: getattr(self, key) for key in self._SAVED}
        return {"metric": self.rule.metric, "kind": self.rule.kind, **saved}

    def restore(self, saved: Mapping[str, Any]) -> None:
        """Take the memory back, unless the rule now watches another metric or kind."""
        if saved.get("metric") != self.rule.metric or saved.get("kind") != self.rule.kind:
            return
        for key in self._SAVED:
            if key in saved:
                setattr(self, key, saved[key])

    def check(self, ts: float, value: float) -> AlarmEvent | None:
        r = self.rule
        if r.kind == "threshold":
            return self._threshold(ts, value)
        if r.kind == "rate":
            prev_ts, prev = self.prev_ts, self.prev_value
            self.prev_ts, self.prev_value = ts, value
            if prev_ts is None or ts <= prev_ts:
                return None
            rate = abs(value - prev) / (ts - prev_ts)
            limit = r.max_rate_per_s or 0.0
            return self._band(ts, value, rate > limit, rate < limit - r.hysteresis, limit, None)
        return self._zscore(ts, value)

    def _threshold(self, ts: float, value: float) -> AlarmEvent | None:
        r = self.rule
        if not self.raised:
            if r.above is not None and value > r.above:
                self.limit = r.above
            elif r.below is not None and value < r.below:
                self.limit = r.below
            else:
                return None
            return self._band(ts, value, True, False, self.limit, None)
        inside = (r.above is None or value < r.above - r.hysteresis) and (
            r.below is None or value > r.below + r.hysteresis
        )
        return self._band(ts, value, False, inside, self.limit, None)

    def _zscore(self, ts: float, value: float) -> AlarmEvent | None:
        r = self.rule
        event = None
        if self.n >= r.min_samples:
            std = math.sqrt(self.var)
            z = (
                abs(value - self.mean) / std
                if std > 0
                else (0.0 if value == self.mean else math.inf)
            )
            baseline = {"mean": self.mean, "stddev": std, "n": float(self.n)}
            event = self._band(ts, value, z > r.z, z < r.z - r.hysteresis, None, baseline)
        if not self.raised:
            alpha = 2.0 / (r.baseline_n + 1) if self.n >= r.min_samples else 1.0 / (self.n + 1)
            delta = value - self.mean
            self.mean += alpha * delta
            self.var = (1 - alpha) * (self.var + alpha * delta * delta)
            self.n += 1
        return event

    def _band(
        self,
        ts: float,
        value: float,
        breach: bool,
        clear: bool,
        threshold: float | None,
        baseline: dict[str, float] | None,
    ) -> AlarmEvent | None:
        r = self.rule
        if not self.raised and breach:
            self.raised = True
            state: Literal["raised", "cleared"] = "raised"
        elif self.raised and clear:
            self.raised = False
            state = "cleared"
        else:
            return None
        return AlarmEvent(
            r.name, r.kind, state, r.metric, value, threshold, baseline, ts, r.severity
        )


class AlarmEngine:
    """Runs every rule over a batch of readings; metrics without rules cost one dict lookup."""

    def __init__(self, rules: Iterable[AlarmRule]) -> None:
        self.by_metric: dict[str, list[RuleState]] = {}
        for rule in rules:
            self.by_metric.setdefault(rule.metric, []).append(RuleState(rule))

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Every rule's memory by rule name, as JSON values."""
        return {s.rule.name: s.snapshot() for states in self.by_metric.values() for s in states}

    def restore(self, saved: Mapping[str, Mapping[str, Any]]) -> None:
        """Resume from a `snapshot`; rules added since start afresh, removed ones are dropped."""
        for states in self.by_metric.values():
            for state in states:
                if state.rule.name in saved:
                    state.restore(saved[state.rule.name])

    def check(
        self, batch: Sequence[Sequence[Any]], ts_min: float = 0.0, ts_max: float = MAX_TS
    ) -> list[AlarmEvent]:
        """Events for the readings the windower would also accept (same value bound, event
        times in `[ts_min, ts_max]`), so a wild reading cannot raise an unsendable alarm."""
        if not self.by_metric:
            return []
        out: list[AlarmEvent] = []
        get = self.by_metric.get
        for r in batch:
            states = get(r[1])
            if states is None:
                continue
            ts, value = r[0], r[2]
            if (
                type(value) not in (float, int)
                or not -MAX_ABS_VALUE < value < MAX_ABS_VALUE
                or type(ts) not in (int, float)
                or not ts_min <= ts <= ts_max
            ):
                continue
            for state in states:
                event = state.check(ts, value)
                if event is not None:
                    out.append(event)
        return out
