"""Windows and quantiles against exact computations, corrections for late readings, and bad
input that is counted and never lands in a window."""

from __future__ import annotations

import math
import random
import statistics
from typing import cast

import pytest
from ddsketch import DDSketch
from hypothesis import given, settings
from hypothesis import strategies as st

from edgebatch.edge.sketch import QuantileSketch
from edgebatch.edge.stats import MetricStats
from edgebatch.edge.window import (
    ClosedWindow,
    Reading,
    Rejects,
    Windower,
    WindowParams,
)
from edgebatch.edge.wire.summary import merge_summaries, metric_summary, stats_from_summary

T0 = 1_767_225_600.0


class Clock:
    """Hand-turned monotonic and wall clocks, so closing by timeout is deterministic."""

    def __init__(self) -> None:
        self.mono = 0.0
        self.wall = T0 + 3600

    def monotonic(self) -> float:
        return self.mono

    def time(self) -> float:
        return self.wall


def windower(
    clock: Clock,
    *,
    size_s: float = 10.0,
    allowed_lateness_s: float = 1.0,
    idle_timeout_s: float = 5.0,
    fold_every: int = 7,
    max_metrics: int = WindowParams.max_metrics,
) -> Windower:
    """A windower on `clock` with short windows and a small fold buffer, so a few readings
    exercise every path."""
    p = WindowParams(
        size_s=size_s,
        allowed_lateness_s=allowed_lateness_s,
        idle_timeout_s=idle_timeout_s,
        correction_delay_s=2.0,
        fold_every=fold_every,
        max_metrics=max_metrics,
    )
    return Windower(p, monotonic=clock.monotonic, wall=clock.time)


def close_all(w: Windower, clock: Clock) -> list[ClosedWindow]:
    clock.mono += 1000.0
    return w.due()


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False).filter(
    lambda x: x == 0.0 or abs(x) > 1e-200
)
readings_st = st.lists(
    st.tuples(st.floats(min_value=0, max_value=59.999), st.sampled_from("abc"), finite),
    min_size=1,
    max_size=300,
)


def exact_quantile(values: list[float], q: float) -> float:
    return sorted(values)[math.floor(q * (len(values) - 1))]


def assert_matches_exact(stats: MetricStats, values: list[float], alpha: float) -> None:
    n = len(values)
    assert stats.count == n
    assert stats.min == min(values) and stats.max == max(values)
    scale = max(1.0, max(abs(v) for v in values))
    assert stats.sum == pytest.approx(math.fsum(values), rel=1e-12, abs=1e-9 * scale)
    assert stats.mean == pytest.approx(statistics.fmean(values), rel=1e-12, abs=1e-9 * scale)
    exact_m2 = math.fsum((v - statistics.fmean(values)) ** 2 for v in values)
    assert stats.m2 == pytest.approx(exact_m2, rel=1e-9, abs=1e-9 * scale * scale)
    for q in (0.0, 0.5, 0.95, 0.99, 1.0):
        exact = exact_quantile(values, q)
        got = stats.sketch.quantile(q)
        assert got is not None
        assert abs(got - exact) <= alpha * abs(exact) * (1 + 1e-9), (q, got, exact)


@settings(max_examples=150, deadline=None)
@given(readings=readings_st, chunk=st.integers(min_value=1, max_value=50), seed=st.integers())
def test_windows_match_exact_statistics_whatever_the_order_and_chunking(readings, chunk, seed):
    clock = Clock()
    w = windower(clock, allowed_lateness_s=100.0)  # nothing is late: every order is fine
    batch = [(T0 + dt, m, v, None) for dt, m, v in readings]
    random.Random(seed).shuffle(batch)
    for i in range(0, len(batch), chunk):
        w.ingest(batch[i : i + chunk])
    closed = close_all(w, clock)
    expected: dict[tuple[float, str], list[float]] = {}
    for ts, m, v, _ in batch:
        expected.setdefault((math.floor((ts - T0) / 10) * 10 + T0, m), []).append(v)
    got = {(c.start, s.name): s for c in closed for s in c.metrics}
    assert got.keys() == expected.keys()
    assert all(c.revision == 0 and c.end == c.start + 10 for c in closed)
    for key, values in expected.items():
        assert_matches_exact(got[key], values, 0.01)
        ts = [t for t, m, _, _ in batch if m == key[1] and key[0] <= t < key[0] + 10]
        assert (got[key].first_ts, got[key].last_ts) == (min(ts), max(ts))
    assert w.rejects.total == 0


@settings(max_examples=100, deadline=None)
@given(
    values=st.lists(finite, min_size=1, max_size=400),
    alpha=st.sampled_from([0.005, 0.01, 0.05]),
    split=st.integers(min_value=0, max_value=400),
)
def test_sketch_quantiles_are_within_alpha_and_merging_is_exact(values, alpha, split):
    whole = QuantileSketch.of(values, alpha)
    left, right = QuantileSketch.of(values[:split], alpha), QuantileSketch.of(values[split:], alpha)
    left.merge(right)
    assert left.to_wire() == whole.to_wire()
    assert QuantileSketch.from_wire(whole.to_wire()).to_wire() == whole.to_wire()
    for q in (0.0, 0.25, 0.5, 0.95, 0.99, 1.0):
        exact = exact_quantile(values, q)
        got = whole.quantile(q)
        assert got is not None
        assert abs(got - exact) <= alpha * abs(exact) * (1 + 1e-9)


def test_sketch_agrees_with_the_ddsketch_library():
    rng = random.Random(3)
    values = [rng.lognormvariate(0, 2) for _ in range(5000)] + [-x for x in range(1, 100)]
    values += [0.0] * 7
    ours = QuantileSketch.of(values, 0.01)
    theirs = DDSketch(0.01)
    for v in values:
        theirs.add(v)
    for q in (0.0, 0.01, 0.5, 0.95, 0.99, 1.0):
        assert ours.quantile(q) == pytest.approx(theirs.get_quantile_value(q), rel=1e-12)


@settings(max_examples=100, deadline=None)
@given(on_time=readings_st, late=readings_st)
def test_window_plus_corrections_equal_the_exact_statistics_of_all_readings(on_time, late):
    clock = Clock()
    w = windower(clock)
    first = [(T0 + dt, m, v, None) for dt, m, v in on_time]
    w.ingest(first)
    closed = close_all(w, clock)
    assert {c.revision for c in closed} == {0}
    # The watermark has passed every window: these readings are late, in two bursts.
    # (A late reading for a window that never had one opens a plain window, revision 0.)
    later = []
    for burst in (late[::2], late[1::2]):
        w.ingest([(T0 + dt, m, v, None) for dt, m, v in burst])
        clock.mono += 3.0  # past the correction delay, before any idle timeout
        later += w.due()
    later += close_all(w, clock)
    merged: dict[tuple[float, str], MetricStats] = {}
    revisions: dict[float, list[int]] = {}
    for c in closed + later:
        revisions.setdefault(c.start, []).append(c.revision)
        for s in c.metrics:
            key = (c.start, s.name)
            merged.setdefault(key, MetricStats(s.name)).merge(s)
    for revs in revisions.values():
        assert revs == sorted(revs) and len(set(revs)) == len(revs)
        assert revs[-1] <= 2
    expected: dict[tuple[float, str], list[float]] = {}
    for dt, m, v in on_time + late:
        expected.setdefault((math.floor(dt / 10) * 10 + T0, m), []).append(v)
    assert merged.keys() == expected.keys()
    for key, values in expected.items():
        assert_matches_exact(merged[key], values, 0.01)


def test_a_late_reading_goes_into_a_correction_with_the_next_revision():
    clock = Clock()
    w = windower(clock)
    w.ingest([(T0 + 1, "a", 1.0, None), (T0 + 10.5, "a", 2.0, None)])
    assert w.due() == []  # the watermark T0+10.5 is within the lateness of T0+10
    w.ingest([(T0 + 9, "a", 4.0, None), (T0 + 11.5, "a", 3.0, None)])
    (first,) = w.due()
    assert (first.start, first.revision, first.count) == (T0, 0, 2)
    w.ingest([(T0 + 2, "a", 5.0, None)])
    clock.mono += 2.0
    (correction,) = w.due()
    assert (correction.start, correction.revision, correction.count) == (T0, 1, 1)
    w.ingest([(T0 + 3, "a", 6.0, None)])
    clock.mono += 2.0
    (second,) = w.due()
    assert (second.start, second.revision) == (T0, 2)


def test_a_quiet_sensor_closes_its_window_by_wall_clock_timeout():
    clock = Clock()
    w = windower(clock, size_s=10.0, allowed_lateness_s=1.0, idle_timeout_s=5.0)
    w.ingest([(T0 + 1, "a", 1.0, None)])
    clock.mono += 15.9
    assert w.due() == []
    clock.mono += 0.2
    assert [c.count for c in w.due()] == [1]


def test_the_watermark_advances_even_when_a_fold_emptied_the_buffers():
    clock = Clock()
    w = windower(clock, fold_every=1)
    w.ingest([(T0 + 1, "a", 1.0, None)])
    w.ingest([(T0 + 2, "a", 1.0, None), (T0 + 3, "a", 1.0, None)])
    w.ingest([(T0 + 15, "a", 1.0, None)])
    assert [c.count for c in w.due()] == [3]


def test_bad_readings_are_counted_by_reason_and_never_reach_a_window():
    clock = Clock()
    w = Windower(
        WindowParams(size_s=10.0, max_future_s=60.0, max_past_s=3600.0),
        known_metrics={"a": "C", "b": None},
        rejects=Rejects(),
        monotonic=clock.monotonic,
        wall=clock.time,
    )
    now = clock.wall
    # Most of these break the Reading type on purpose: sources are typed, but a reading
    # built from untrusted input must still be refused at run time, never summed.
    readings: list[tuple[object, object, object, object]] = [
        (now, "a", 1.0, None),
        (now, "a", "12", None),
        (now, "a", None, None),
        (now, "a", True, None),
        (now, "a", float("nan"), None),
        (now, "a", float("inf"), None),
        (now, "a", -float("inf"), None),
        ("yesterday", "a", 1.0, None),
        (float("nan"), "a", 1.0, None),
        (now + 3600, "a", 1.0, None),
        (now - 7200, "a", 1.0, None),
        (now, "nope", 1.0, None),
        (now, "bad name", 1.0, None),
        (now, 7, 1.0, None),
        (now, "b", 2.0, "x" * 100),
        (now, "b", 2.0, 5),
        (now, "a", 1e300, None),
        (now, "a", -(10**200), None),
        (now, "a", 10**400, None),
        (10**400, "a", 1.0, None),
        (now + 1, "a", 3.0, None),
    ]
    w.ingest(cast(list[Reading], readings))
    assert dict(w.rejects.counts) == {
        "not_numeric": 3,
        "not_finite": 3,
        "bad_timestamp": 3,
        "too_far_future": 1,
        "too_far_past": 1,
        "unknown_metric": 1,
        "bad_metric_name": 2,
        "bad_unit": 2,
        "out_of_range": 3,
    }
    (closed,) = close_all(w, clock)
    (a,) = closed.metrics
    assert (a.name, a.unit, a.count, a.sum, a.min, a.max) == ("a", "C", 2, 4.0, 1.0, 3.0)


def test_too_many_metrics_in_one_window_are_rejected_not_grown_without_bound():
    clock = Clock()
    w = windower(clock, max_metrics=3)
    w.ingest([(T0 + 1, f"m{i}", 1.0, None) for i in range(5)])
    assert w.rejects.counts["too_many_metrics"] == 2
    (closed,) = close_all(w, clock)
    assert [m.name for m in closed.metrics] == ["m0", "m1", "m2"]


def test_fractional_window_sizes_give_stable_starts():
    clock = Clock()
    w = windower(clock, size_s=0.3)
    starts = {w.window_start(T0 + k * 0.3 + 0.0001) for k in range(1000)}
    assert len(starts) == 1000
    assert all(s <= T0 + k * 0.3 + 0.0001 < s + 0.3 for k, s in enumerate(sorted(starts)))
    assert all(round(s, 6) == s for s in starts)


def test_merging_summaries_keeps_count_sum_min_max_exact_and_variance_right():
    rng = random.Random(5)
    groups, values = [], []
    for _ in range(4):
        chunk = [rng.gauss(10, 4) for _ in range(100)]
        values += chunk
        s = MetricStats("a", "C")
        s.add_chunk(chunk, [T0 + i for i in range(100)])
        groups.append([metric_summary(s)])
    (merged,) = merge_summaries(groups)
    assert merged["count"] == 400
    assert merged["sum"] == pytest.approx(math.fsum(values), rel=1e-13)
    assert (merged["min"], merged["max"]) == (min(values), max(values))
    assert merged["stddev"] == pytest.approx(statistics.stdev(values), rel=1e-9)
    back = stats_from_summary(merged)
    assert back.sketch.count == 400
    assert abs(merged["p95"] - exact_quantile(values, 0.95)) <= 0.0101 * exact_quantile(
        values, 0.95
    )
