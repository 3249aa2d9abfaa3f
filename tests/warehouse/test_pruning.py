"""The partition predicate a narrowed MERGE prunes on, and the guard on the rows it writes."""

from __future__ import annotations

import datetime as dt

import pytest

from edgebatch.warehouse.pruning import GUARD_MARK, guarded, within

D = dt.date(2026, 11, 19)
ROWS = [
    ("a", D),
    ("a", D + dt.timedelta(days=1)),
    ("b", D),
    ("o'brien", D),
    ("back\\slash", D),
    ("c", D - dt.timedelta(days=400)),
]


@pytest.fixture(scope="module")
def frame(spark):
    return spark.createDataFrame(ROWS, "tenant STRING, date DATE")


def _kept(df, values, prefix=""):
    named = df.alias("t") if prefix else df
    rows = named.where(within(["tenant", "date"], values, prefix)).collect()
    return sorted(tuple(r) for r in rows)


@pytest.mark.parametrize(
    "values",
    [
        [("a", D), ("b", D)],
        [("a", D), ("a", D + dt.timedelta(days=1)), ("c", D - dt.timedelta(days=400))],
        [("o'brien", D), ("a", D)],  # a quote: the literal-by-literal way
        [("back\\slash", D)],
        [("zz", D)],
        [],
    ],
)
def test_within_keeps_exactly_the_named_partitions(frame, values):
    expected = sorted(r for r in ROWS if r in values)
    assert _kept(frame, values) == expected
    assert _kept(frame, values, prefix="t.") == expected


def test_within_takes_integer_partitions(spark):
    df = spark.createDataFrame([(1, 10), (1, 11), (2, 10)], "shard INT, day INT")
    kept = df.where(within(["shard", "day"], [(1, 11), (2, 10)])).collect()
    assert sorted(tuple(r) for r in kept) == [(1, 11), (2, 10)]


def test_guard_fails_a_row_outside_and_passes_the_rest(frame):
    inside = [r for r in ROWS if r[0] != "c"]
    assert guarded(frame.where("tenant != 'c'"), ["tenant", "date"], inside).count() == 5
    with pytest.raises(Exception, match=GUARD_MARK):
        guarded(frame, ["tenant", "date"], inside).collect()
