"""Patient vitals: every figure of the three tables equal to DuckDB's computation over the
same landing files, the unconsented patient nowhere, a rerun changing nothing, and a
withdrawal erasing the patient from every vitals table."""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Iterator

import duckdb
import pytest

from tests.support.landed import Landing, Warehouse, duckdb_views, lands

pytestmark = [pytest.mark.integration]

TENANT = "demo-health"
MONTHS = ("2026-10", "2026-11")
# Two weekends around a month's end, so a week crosses the month and the baselines of
# the alarms reach back into the month before.
DAYS = [dt.date(2026, 10, d) for d in (24, 25, 29, 30)] + [dt.date(2026, 11, d) for d in (1, 2)]
MONITORS = {"monitor-01": 0.0, "monitor-02": 6.0, "monitor-03": -4.0}  # pat-03: no consent
VITALS = {
    "heart_rate": ("bpm", 72.0, 6.0),
    "systolic_bp": ("mmHg", 122.0, 8.0),
    "diastolic_bp": ("mmHg", 79.0, 5.0),
    "spo2": ("%", 97.0, 0.8),
}
TABLES = ("gold/vitals_daily", "gold/vitals_weekly", "gold/vitals_alarms")
TOL = 1e-9


@lands("vitals")
def _landing() -> Landing:
    rng = random.Random(18)
    landing = Landing()
    for device, shift in MONITORS.items():
        for day in DAYS:
            for slot in range(6):  # four-hour windows
                start = dt.datetime.combine(day, dt.time(4 * slot))
                metrics = {
                    name: (unit, [rng.gauss(base + shift + slot, sd) for _ in range(n)])
                    for name, (unit, base, sd) in VITALS.items()
                    for n in [rng.randint(3, 12)]
                }
                landing.window(TENANT, device, start, 240, metrics, resend=slot == 2)
        # readings that arrived late: a revision of one window
        late = dt.datetime(2026, 10, 29, 8)
        values = [rng.gauss(95, 4) for _ in range(5)]
        landing.window(TENANT, device, late, 240, {"heart_rate": ("bpm", values)}, revision=1)
    at = dt.datetime
    landing.alarm(TENANT, "monitor-01", at(2026, 10, 30, 12, 10), "heart_rate", 150.0, 120.0)
    landing.alarm(TENANT, "monitor-01", at(2026, 11, 2, 0, 30), "heart_rate", 101.0, 120.0,
                  state="cleared")  # fmt: skip
    landing.alarm(TENANT, "monitor-01", at(2026, 10, 24, 0, 10), "spo2", 85.0, 90.0, rule="low")
    landing.alarm(TENANT, "monitor-02", at(2026, 11, 1, 9, 0), "systolic_bp", 190.0, 160.0)
    landing.alarm(TENANT, "monitor-03", at(2026, 10, 30, 7, 0), "heart_rate", 160.0, 120.0)
    return landing


@pytest.fixture(scope="module")
def loaded(gold_warehouse: Warehouse) -> Iterator[tuple[Warehouse, duckdb.DuckDBPyConnection]]:
    """The session's warehouse (landed, loaded to silver), the vitals of both months
    computed, and DuckDB's views over the same landing files."""
    gold_warehouse.run("vitals", start=MONTHS[0], end=MONTHS[1])
    with duckdb.connect() as con:
        duckdb_views(con, gold_warehouse)
        yield gold_warehouse, con


# The patient's windows: registered monitors of consented patients, vital metrics only.
PATIENT_WINDOWS = """
    SELECT w.*, d.subject AS patient FROM windows w
    JOIN devices d ON d.tenant = w.tenant AND d.device = w.device
        AND w.date >= CAST(d.installed_on AS DATE)
        AND (coalesce(d.removed_on, '') = '' OR w.date < CAST(d.removed_on AS DATE))
    JOIN consented c ON c.tenant = d.tenant AND c.subject = d.subject
    WHERE d.kind = 'patient_monitor' AND w.metric IN ('heart_rate', 'systolic_bp',
        'diastolic_bp', 'spo2')
"""
# Pooled from each part's sum of squares, a different road from the job's Chan formula.
STATS = """
    count(DISTINCT (device, window_start, window_end)) AS windows, sum(n) AS count,
    sum(s) / sum(n) AS mean,
    sqrt((sum(m2 + s * s / n) - sum(s) * sum(s) / sum(n)) / (sum(n) - 1)) AS stddev,
    min(lo) AS min, max(hi) AS max
"""


def _close(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(a, b, rel_tol=TOL, abs_tol=1e-9)
    return bool(a == b)


def _assert_rows_match(got: dict, expected: dict) -> None:
    assert set(got) == set(expected)
    for key, row in expected.items():
        for name, value in row.items():
            assert _close(got[key][name], value), (key, name, got[key][name], value)


def _gold(w: Warehouse, table: str, key: tuple[str, ...]) -> dict:
    return {tuple(r[k] for k in key): r for r in w.rows(table)}


def test_daily_and_weekly_vitals_equal_duckdb_over_the_landing_files(loaded):
    w, con = loaded
    daily = con.execute(
        f"""
        SELECT tenant, date, patient, metric, first(unit) AS unit,
               count(DISTINCT device) AS devices, {STATS},
               CAST(date_trunc('month', date) AS DATE) AS month
        FROM ({PATIENT_WINDOWS}) GROUP BY ALL
        """
    ).fetchall()
    names = [d[0] for d in con.description]
    expected = {r[:4]: dict(zip(names, r, strict=True)) for r in daily}
    got = _gold(w, "gold/vitals_daily", ("tenant", "date", "patient", "metric"))

    assert {k[2] for k in expected} == {"pat-01", "pat-02"}
    assert len(expected) == 2 * len(DAYS) * len(VITALS)
    _assert_rows_match(got, expected)

    weekly = con.execute(
        f"""
        SELECT tenant, CAST(date_trunc('week', date) AS DATE) AS week_start, patient, metric,
               first(unit) AS unit, count(DISTINCT date) AS days, {STATS},
               CAST(date_trunc('week', date) AS DATE) + 6 AS week_end,
               CAST(date_trunc('month', CAST(date_trunc('week', date) AS DATE) + 6) AS DATE)
                   AS month,
               isoyear(date) AS iso_year, weekofyear(date) AS iso_week
        FROM ({PATIENT_WINDOWS}) GROUP BY ALL
        """
    ).fetchall()
    names = [d[0] for d in con.description]
    expected = {r[:4]: dict(zip(names, r, strict=True)) for r in weekly}
    got = _gold(w, "gold/vitals_weekly", ("tenant", "week_start", "patient", "metric"))

    # 19-25 Oct in October; 26 Oct-1 Nov (crossing the month) and 2-8 Nov in November
    assert {(k[1], v["month"]) for k, v in expected.items()} == {
        (dt.date(2026, 10, 19), dt.date(2026, 10, 1)),
        (dt.date(2026, 10, 26), dt.date(2026, 11, 1)),
        (dt.date(2026, 11, 2), dt.date(2026, 11, 1)),
    }
    _assert_rows_match(got, expected)


def test_each_alarm_sits_beside_the_patients_baseline_of_the_seven_days_before(loaded):
    w, con = loaded
    rows = con.execute(
        f"""
        WITH a AS (
            SELECT a.*, d.subject AS patient, CAST(a.ts AS DATE) AS date FROM alarms a
            JOIN devices d ON d.tenant = a.tenant AND d.device = a.device
                AND d.kind = 'patient_monitor'
            JOIN consented c ON c.tenant = d.tenant AND c.subject = d.subject
        ), b AS (
            SELECT alarm_id, {STATS} FROM (
                SELECT a.alarm_id, w.device, w.window_start, w.window_end, w.n, w.s, w.m2,
                       w.lo, w.hi
                FROM a JOIN ({PATIENT_WINDOWS}) w
                    ON w.tenant = a.tenant AND w.patient = a.patient AND w.metric = a.metric
                    AND w.window_start >= a.ts - INTERVAL 7 DAYS AND w.window_end <= a.ts
            ) GROUP BY alarm_id
        )
        SELECT a.alarm_id, a.tenant, a.patient, a.device, a.metric, a.state, a.value,
               CAST(date_trunc('month', a.date) AS DATE) AS month, a.date,
               coalesce(b.windows, 0) AS baseline_windows,
               coalesce(b.count, 0) AS baseline_count, b.mean AS baseline_mean,
               b.stddev AS baseline_stddev, a.value - b.mean AS deviation,
               (a.value - b.mean) / b.stddev AS z_score
        FROM a LEFT JOIN b USING (alarm_id)
        """
    ).fetchall()
    names = [d[0] for d in con.description]
    expected = {(r[0],): dict(zip(names, r, strict=True)) for r in rows}
    got = _gold(w, "gold/vitals_alarms", ("alarm_id",))

    assert sorted(v["patient"] for v in expected.values()) == ["pat-01"] * 3 + ["pat-02"]
    spo2 = next(v for v in expected.values() if v["metric"] == "spo2")
    assert spo2["baseline_count"] == 0  # nothing in the week before the first day
    high = next(v for v in expected.values() if v["value"] == 150.0)
    assert high["baseline_windows"] == 3 * 6 + 3  # 24, 25, 29 Oct, and 30 Oct to 12:00
    assert high["z_score"] > 3
    _assert_rows_match(got, expected)


def test_rerunning_a_month_leaves_every_vitals_table_unchanged(loaded):
    w, _ = loaded
    before = {t: w.table_rows(t) for t in TABLES}
    assert all(before.values())

    w.run("vitals", partitions=MONTHS, rerun=True)

    assert {t: w.table_rows(t) for t in TABLES} == before


def test_a_withdrawal_erases_the_patient_from_every_vitals_table(loaded, tmp_path):
    w, _ = loaded
    with w.withdrawn(tmp_path, "demo-health,pat-02,withdrawn,2026-11-20T10:00:00Z,patient request"):
        patients = {t: {r[0] for r in w.table_rows(t, ("patient",))} for t in TABLES}
        assert patients == {t: {"pat-01"} for t in TABLES}
        # and a rerun of the month cannot bring the patient back: the gate keeps them out
        w.run("vitals", partitions=(MONTHS[1],), rerun=True)
        assert {r[0] for r in w.table_rows("gold/vitals_daily", ("patient",))} == {"pat-01"}
