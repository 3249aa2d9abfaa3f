"""Alarm rules: a breach raises at once, hysteresis turns a flapping value into one alarm,
and a z-score baseline does not learn the anomaly it is flagging."""

from __future__ import annotations

import random

import pytest

from edgebatch.edge.alarms import AlarmEngine, AlarmEvent, AlarmRule
from edgebatch.errors import ConfigError

T0 = 1_767_225_600.0


def run(rule: AlarmRule, values: list[float], step: float = 1.0) -> list[AlarmEvent]:
    engine = AlarmEngine([rule])
    return engine.check([(T0 + i * step, rule.metric, v, None) for i, v in enumerate(values)])


def test_a_flapping_value_raises_one_alarm_and_one_clear_with_hysteresis():
    flapping = [79.0, 81.0] * 50 + [70.0]
    rule = AlarmRule("hot", "temp", above=80.0, hysteresis=5.0)
    events = run(rule, flapping)
    assert [(e.state, e.value, e.ts) for e in events] == [
        ("raised", 81.0, T0 + 1),
        ("cleared", 70.0, T0 + 100),
    ]
    assert events[0].threshold == 80.0 and events[0].baseline is None
    without = run(AlarmRule("hot", "temp", above=80.0), flapping)
    assert len(without) == 100  # what the hysteresis saves


def test_a_below_threshold_raises_and_clears():
    events = run(AlarmRule("cold", "temp", below=0.0, hysteresis=1.0), [5, -1, -2, 0.5, 1.5])
    assert [(e.state, e.value) for e in events] == [("raised", -1), ("cleared", 1.5)]


def test_rate_of_change_is_per_second_of_event_time():
    rule = AlarmRule("jump", "level", kind="rate", max_rate_per_s=2.0, hysteresis=0.5)
    events = run(rule, [0.0, 1.0, 2.0, 10.0, 11.0, 12.0], step=2.0)
    assert [(e.state, e.value) for e in events] == [("raised", 10.0), ("cleared", 11.0)]


def test_zscore_flags_an_injected_anomaly_and_keeps_its_baseline():
    rng = random.Random(2)
    normal = [rng.gauss(20, 1) for _ in range(200)]
    values = normal + [35.0] * 20 + [20.0]
    rule = AlarmRule("odd", "temp", kind="zscore", z=5.0, baseline_n=100, min_samples=30,
                     hysteresis=1.0)  # fmt: skip
    events = run(rule, values)
    assert [(e.state, e.value) for e in events] == [("raised", 35.0), ("cleared", 20.0)]
    base, after = events[0].baseline, events[1].baseline
    assert base is not None and after is not None, "a z-score event carries its baseline"
    assert base["mean"] == pytest.approx(20, abs=0.5) and 0.5 < base["stddev"] < 1.5
    assert after["mean"] == pytest.approx(base["mean"])  # frozen while raised


def test_bad_values_and_other_metrics_are_ignored_by_rules():
    engine = AlarmEngine([AlarmRule("hot", "temp", above=1.0)])
    batch = [
        (T0, "temp", float("nan"), None),
        (T0, "temp", "9", None),
        (T0, "other", 9.0, None),
        (T0, "temp", 1e300, None),  # the windower refuses it too: no alarm it cannot send
        (T0 + 1e9, "temp", 9.0, None),
        (float("inf"), "temp", 9.0, None),
    ]
    assert engine.check(batch, T0 - 60, T0 + 60) == []
    (event,) = engine.check([(T0, "temp", 9.0, None)], T0 - 60, T0 + 60)
    assert event.state == "raised"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "threshold"}, "needs 'above' or 'below'"),
        ({"kind": "rate"}, "max_rate_per_s"),
        ({"kind": "zscore", "z": 0.0}, "z > 0"),
        ({"above": 1.0, "hysteresis": -1.0}, "hysteresis"),
        ({"above": 1.0, "metric": "bad metric"}, "not a metric name"),
    ],
)
def test_a_rule_that_cannot_work_is_refused_at_start_up(kwargs, message):
    rule = AlarmRule(**{"name": "r", "metric": "m", **kwargs})
    with pytest.raises(ConfigError, match=message):
        rule.validate()
