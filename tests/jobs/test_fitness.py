"""Fitness: every figure of `gold/fitness_monthly` equal to an independent computation over
the same landing files (DuckDB for the months, plain Python for the comparisons), a
rerun changing nothing, and a withdrawal erasing the user."""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Iterator

import duckdb
import pytest

from edgebatch.jobs.fitness import ACTIVE_DAY_STEPS
from tests.support.landed import Landing, Warehouse, duckdb_views, lands

pytestmark = [pytest.mark.integration]

TENANT = "demo-fitness"
TABLE = "gold/fitness_monthly"
MONTHS = ("2025-11", "2026-09", "2026-10", "2026-11")
# A year-old month (only tracker-03 was installed then; tracker-01's readings of it are
# unregistered and withheld), a month two back, and the last two months.
DAYS = [dt.date(2025, 11, 10), dt.date(2026, 9, 15)] + [
    dt.date(2026, m, d) for m, d in ((10, 5), (10, 6), (11, 2), (11, 3))
]
TRACKERS = {"tracker-01": 45.0, "tracker-02": 30.0, "tracker-03": 38.0}
HOURS = (7, 8, 12, 17, 18)


@lands("fitness")
def _landing() -> Landing:
    rng = random.Random(1818)
    landing = Landing()
    for device, pace in TRACKERS.items():
        for day in DAYS:
            if day.year == 2025 and device == "tracker-02":
                continue
            # tracker-02's second November day is a lazy one: not an active day
            lazy = device == "tracker-02" and day == dt.date(2026, 11, 3)
            for hour in HOURS:
                minutes = 120 if hour == 12 else 60  # one longer window a day
                n, step_rate = rng.randint(4, 20), 5 if lazy else 60
                metrics = {
                    "distance": ("m/min", [max(0.0, rng.gauss(pace, 12)) for _ in range(n)]),
                    "steps": ("steps/min", [max(0.0, rng.gauss(step_rate, 8)) for _ in range(n)]),
                    "heart_rate": ("bpm", [rng.gauss(80, 9) for _ in range(n)]),
                }
                start = dt.datetime.combine(day, dt.time(hour))
                landing.window(TENANT, device, start, minutes, metrics, resend=hour == 8)
        late = dt.datetime(2026, 11, 2, 7)  # readings that arrived late: a revision
        landing.window(
            TENANT, device, late, 60,
            {"distance": ("m/min", [rng.gauss(90, 5) for _ in range(6)])}, revision=1,
        )  # fmt: skip
    return landing


@pytest.fixture(scope="module")
def loaded(gold_warehouse: Warehouse) -> Iterator[tuple[Warehouse, duckdb.DuckDBPyConnection]]:
    """The session's warehouse (landed, loaded to silver), the fitness of the four months
    computed, and DuckDB's views over the same landing files."""
    gold_warehouse.run("fitness", partitions=MONTHS)
    with duckdb.connect() as con:
        duckdb_views(con, gold_warehouse)
        yield gold_warehouse, con


MONTHLY = """
    WITH merged AS (   -- a window's revisions are one window: its mean x its minutes
        SELECT w.tenant, d.subject AS user, w.date, w.metric,
               sum(w.s) / sum(w.n) * any_value(w.minutes) AS amount
        FROM windows w
        JOIN devices d ON d.tenant = w.tenant AND d.device = w.device
            AND w.date >= CAST(d.installed_on AS DATE)
            AND (coalesce(d.removed_on, '') = '' OR w.date < CAST(d.removed_on AS DATE))
        JOIN consented c ON c.tenant = d.tenant AND c.subject = d.subject
        WHERE d.kind = 'fitness_tracker' AND w.metric IN ('distance', 'steps')
        GROUP BY w.tenant, d.subject, w.date, w.metric, w.device, w.window_start, w.window_end
    ), days AS (
        SELECT tenant, user, date,
               sum(amount) FILTER (WHERE metric = 'distance') AS distance,
               sum(amount) FILTER (WHERE metric = 'steps') AS steps
        FROM merged GROUP BY ALL
    )
    SELECT tenant, user, CAST(date_trunc('month', date) AS DATE) AS month,
           count(*) AS days_tracked, count(*) FILTER (WHERE steps >= $active) AS active_days,
           sum(distance) AS distance_m, sum(steps) AS steps
    FROM days GROUP BY ALL
"""


def _expected(con) -> dict:
    rows = con.execute(MONTHLY, {"active": ACTIVE_DAY_STEPS}).fetchall()
    months = {
        (t, u, m): {"days_tracked": d, "active_days": a, "distance_m": dist, "steps": st}
        for t, u, m, d, a, dist, st in rows
    }

    def shift(month: dt.date, by: int) -> dt.date:
        i = month.year * 12 + month.month - 1 + by
        return dt.date(i // 12, i % 12 + 1, 1)

    def avg(key) -> float | None:
        m = months.get(key)
        return None if m is None else m["distance_m"] / m["days_tracked"]

    def pct(now: float, then: float | None) -> float | None:
        return None if not then else (now - then) / then * 100.0

    out = {}
    for (tenant, user, month), m in months.items():
        mine = avg((tenant, user, month))
        assert mine is not None
        window = [months.get((tenant, user, shift(month, -k))) for k in range(3)]
        prev = avg((tenant, user, shift(month, -1)))
        year_ago = avg((tenant, user, shift(month, -12)))
        peers = [avg(k) for k in months if k[0] == tenant and k[2] == month]
        out[(tenant, month, user)] = {
            **m,
            "avg_daily_distance_m": mine,
            "avg_daily_steps": m["steps"] / m["days_tracked"],
            "prev_month_avg_daily_distance_m": prev,
            "change_vs_prev_month_pct": pct(mine, prev),
            "year_ago_avg_daily_distance_m": year_ago,
            "change_vs_year_ago_pct": pct(mine, year_ago),
            "rolling_3m_avg_daily_distance_m": sum(w["distance_m"] for w in window if w)
            / sum(w["days_tracked"] for w in window if w),
            "rolling_3m_days": sum(w["days_tracked"] for w in window if w),
            "rank_in_tenant": 1 + sum(p > mine for p in peers if p is not None),
            "users_in_tenant": len(peers),
        }
    return out


def _close(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def test_monthly_walking_and_its_comparisons_equal_an_independent_computation(loaded):
    w, con = loaded
    expected = _expected(con)
    got = {(r["tenant"], r["month"], r["user"]): r for r in w.rows(TABLE)}

    nov = dt.date(2026, 11, 1)
    assert set(expected) == set(got)
    assert {k[2] for k in expected if k[1] == nov} == {"user-01", "user-02", "user-03"}
    assert {k[2] for k in expected if k[1].year == 2025} == {"user-03"}  # tracker-01 withheld
    assert expected[(TENANT, nov, "user-02")]["active_days"] == 1
    assert expected[(TENANT, nov, "user-03")]["year_ago_avg_daily_distance_m"] is not None
    assert expected[(TENANT, nov, "user-01")]["rank_in_tenant"] == 1
    for key, row in expected.items():
        for name, value in row.items():
            assert _close(got[key][name], value), (key, name, got[key][name], value)


def test_rerunning_the_months_leaves_the_table_unchanged(loaded):
    w, _ = loaded
    before = w.table_rows(TABLE)
    assert before

    w.run("fitness", partitions=MONTHS, rerun=True)

    assert w.table_rows(TABLE) == before


def test_a_withdrawal_erases_the_user_from_the_fitness_table(loaded, tmp_path):
    w, _ = loaded
    with w.withdrawn(tmp_path, "demo-fitness,user-02,withdrawn,2026-11-20T10:00:00Z,app"):
        assert {r[0] for r in w.table_rows(TABLE, ("user",))} == {"user-01", "user-03"}
