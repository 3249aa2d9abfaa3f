"""Fleet: every figure of `gold/fleet_daily` and `gold/fleet_periods` equal to a plain-Python
computation over the same landing files (read with DuckDB), a rerun changing nothing,
and a withdrawn vehicle erased from both tables."""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter, defaultdict
from typing import Any

import pytest

from edgebatch.jobs.fleet import (
    DRIVING_SPEED_KMH,
    ENGINE_ON_RPM,
    HARSH_ACCELERATION_MS2,
    HARSH_BRAKING_MS2,
    IDLE_SPEED_KMH,
    SPEED_BANDS_KMH,
)
from tests.support.landed import Warehouse, devices_of, landed_windows, lands, ts
from tests.support.mobility_data import MONTHS, fleet_landing

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TENANT = "demo-fleet"
WITHDRAWN = "van-02"
lands("fleet")(fleet_landing)


def expected_daily(windows: list[dict[str, Any]], leave_out: frozenset[str] = frozenset()) -> dict:
    """(vehicle, date) -> the day's figures, by the rules docs/gold.md states."""
    subjects = devices_of("vehicle")
    per_window: dict[tuple, dict[str, dict]] = defaultdict(dict)
    for w in windows:
        per_window[(w["tenant"], w["device"], w["ws"], w["we"])][w["metric"]] = w
    days: dict[tuple, dict[str, Any]] = {}
    for (tenant, device, ws, we), metrics in per_window.items():
        vehicle = subjects.get((tenant, device))
        if vehicle is None or vehicle in leave_out:  # another kind, or withdrawn
            continue
        date = dt.datetime.fromtimestamp(ws, dt.UTC).date()
        d = days.setdefault(
            (vehicle, date),
            {
                "windows": 0,
                "distance_km": 0.0,
                "observed_hours": 0.0,
                "driving_hours": 0.0,
                "max_speed_kmh": None,
                "harsh_braking": 0,
                "harsh_acceleration": 0,
                "min_acceleration_ms2": None,
                "idle_hours": 0.0,
                "fuel_l": 0.0,
                **{name: 0.0 for name, _ in SPEED_BANDS_KMH},
            },
        )
        hours = (we - ws) / 3600
        d["windows"] += 1
        speed, accel = metrics.get("speed"), metrics.get("acceleration")
        rpm, fuel = metrics.get("engine_rpm"), metrics.get("fuel_rate")
        if speed:
            d["distance_km"] += speed["mean"] * hours
            d["observed_hours"] += hours
            if speed["mean"] >= DRIVING_SPEED_KMH:
                d["driving_hours"] += hours
            band = [name for name, low in SPEED_BANDS_KMH if speed["mean"] >= low][-1]
            d[band] += hours
            d["max_speed_kmh"] = max(d["max_speed_kmh"] or speed["max"], speed["max"])
            if rpm and speed["mean"] < IDLE_SPEED_KMH and rpm["mean"] >= ENGINE_ON_RPM:
                d["idle_hours"] += hours
        if accel:
            d["harsh_braking"] += accel["min"] <= HARSH_BRAKING_MS2
            d["harsh_acceleration"] += accel["max"] >= HARSH_ACCELERATION_MS2
            low = d["min_acceleration_ms2"]
            d["min_acceleration_ms2"] = accel["min"] if low is None else min(low, accel["min"])
        if fuel:
            d["fuel_l"] += fuel["mean"] * hours
    for d in days.values():
        d["avg_speed_kmh"] = d["distance_km"] / d["observed_hours"] if d["observed_hours"] else None
        d["fuel_l_per_100km"] = d["fuel_l"] / d["distance_km"] * 100 if d["distance_km"] else None
    return days


def expected_alarms(w: Warehouse, leave_out: frozenset[str] = frozenset()) -> Counter:
    """(vehicle, date) -> acceleration alarms raised that day by a device registered to
    the vehicle (every example vehicle device is registered all year), each alarm once."""
    subjects = devices_of("vehicle")
    alarms = {}
    for msg in w.payloads("alarm"):
        vehicle = subjects.get((msg["tenant"], msg["device"]))
        if msg["metric"] != "acceleration" or msg["state"] != "raised" or vehicle is None:
            continue
        if vehicle not in leave_out:
            alarms[msg["alarm_id"]] = (vehicle, ts(msg["ts"]).date())
    return Counter(alarms.values())


def _rank(values: dict[str, float | None], vehicle: str, descending: bool) -> int | None:
    mine = values[vehicle]
    if mine is None:
        return None
    better = [
        v for v in values.values() if v is not None and (v > mine if descending else v < mine)
    ]
    return 1 + len(better)


def expected_periods(days: dict, month: dt.date) -> dict:
    """(period, vehicle) -> the month's and the quarter-to-date's comparison figures."""
    month_end = (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(1)
    quarter = month.replace(month=3 * ((month.month - 1) // 3) + 1)
    out = {}
    for period, start in (("month", month), ("quarter", quarter)):
        totals: dict[str, dict[str, Any]] = {}
        for (vehicle, date), d in days.items():
            if not start <= date <= month_end:
                continue
            t = totals.setdefault(vehicle, defaultdict(float, days_active=0, max_speed_kmh=None))
            t["days_active"] += 1
            for key in ("distance_km", "driving_hours", "idle_hours", "fuel_l"):
                t[key] += d[key]
            t["harsh_events"] += d["harsh_braking"] + d["harsh_acceleration"]
            highs = [x for x in (t["max_speed_kmh"], d["max_speed_kmh"]) if x is not None]
            t["max_speed_kmh"] = max(highs) if highs else None
        for t in totals.values():
            km = t["distance_km"]
            t["fuel_l_per_100km"] = t["fuel_l"] / km * 100 if km else None
            t["harsh_per_100km"] = t["harsh_events"] / km * 100 if km else None

        def mean(key: str, totals: dict[str, dict[str, Any]] = totals) -> float | None:
            values = [t[key] for t in totals.values() if t[key] is not None]
            return sum(values) / len(values) if values else None

        t_mean = mean("distance_km") or math.nan
        for vehicle, t in totals.items():
            out[(period, vehicle)] = {
                **t,
                "period_start": start,
                "period_end": month_end,
                "months": month.month - start.month + 1,
                "fleet_vehicles": len(totals),
                "fleet_avg_distance_km": mean("distance_km"),
                "fleet_avg_idle_hours": mean("idle_hours"),
                "fleet_avg_fuel_l_per_100km": mean("fuel_l_per_100km"),
                "fleet_avg_harsh_per_100km": mean("harsh_per_100km"),
                "distance_vs_fleet": t["distance_km"] / t_mean,
                "rank_distance": _rank(
                    {v: x["distance_km"] for v, x in totals.items()}, vehicle, True
                ),
                "rank_fuel_efficiency": _rank(
                    {v: x["fuel_l_per_100km"] for v, x in totals.items()}, vehicle, False
                ),
                "rank_harsh": _rank(
                    {v: x["harsh_per_100km"] for v, x in totals.items()}, vehicle, False
                ),
            }
    return out


def assert_same(got: dict[str, Any], want: dict[str, Any], where: Any) -> None:
    for key, value in want.items():
        if key not in got:
            continue
        if isinstance(value, float) and got[key] is not None:
            assert math.isclose(got[key], value, rel_tol=1e-9, abs_tol=1e-9), (
                where,
                key,
                got[key],
                value,
            )
        else:
            assert got[key] == value, (where, key, got[key], value)


@pytest.fixture(scope="module")
def fleet(gold_warehouse: Warehouse) -> Warehouse:
    gold_warehouse.run("fleet", start=MONTHS[0], end=MONTHS[1])
    return gold_warehouse


def _check_against_landing(fleet: Warehouse, leave_out: frozenset[str] = frozenset()) -> None:
    days = expected_daily(landed_windows(fleet), leave_out)
    alarms = expected_alarms(fleet, leave_out)
    for key, d in days.items():  # a day without windows has no row for its alarms
        d["acceleration_alarms"] = alarms[key]
    got_days = {(r["vehicle"], r["date"]): r for r in fleet.rows("gold/fleet_daily")}
    assert set(got_days) == set(days)
    for key, want in days.items():
        row = got_days[key]
        assert (row["tenant"], row["month"], row["devices"]) == (TENANT, key[1].replace(day=1), 1)
        assert row["site"] == ("depot-2" if key[0] == "truck-01" else "depot-1")
        assert_same(row, want, key)
    got = {(r["month"], r["period"], r["vehicle"]): r for r in fleet.rows("gold/fleet_periods")}
    want_all = {}
    for month in MONTHS:
        first = dt.date.fromisoformat(month + "-01")
        want_all.update({(first, *k): v for k, v in expected_periods(days, first).items()})
    assert set(got) == set(want_all)
    for key, want in want_all.items():
        assert_same(got[key], want, key)


def test_fleet_figures_equal_an_independent_computation_over_the_landing_files(fleet):
    _check_against_landing(fleet)
    daily = fleet.rows("gold/fleet_daily")
    # the data exercises every rule: harsh events, idle time, every speed band, a revision
    assert sum(r["harsh_braking"] for r in daily) and sum(r["harsh_acceleration"] for r in daily)
    assert sum(r["idle_hours"] for r in daily) > 0
    # every alarm counts, not one per window: two in one half hour of van-01 (a clear,
    # a speed alarm, a second landing, an unregistered device and a day without
    # windows do not count)
    alarms = {(r["vehicle"], r["date"]): r["acceleration_alarms"] for r in daily}
    assert alarms[("van-01", dt.date(2026, 10, 30))] == 2
    assert sum(alarms.values()) == 5
    assert all(sum(r[name] for r in daily) > 0 for name, _ in SPEED_BANDS_KMH)
    (late,) = [r for r in daily if r["vehicle"] == "van-01" and r["date"] == dt.date(2026, 11, 1)]
    assert late["max_speed_kmh"] >= 130.0
    # October's quarter-to-date is October; November's covers both months
    periods = fleet.rows("gold/fleet_periods")
    nov_q = [r for r in periods if r["period"] == "quarter" and r["month"] == dt.date(2026, 11, 1)]
    assert {(r["period_start"], r["months"], r["days_active"]) for r in nov_q} == {
        (dt.date(2026, 10, 1), 2, 4)
    }


def test_rerunning_the_months_leaves_both_tables_unchanged(fleet):
    before = {
        t: sorted(map(repr, fleet.rows(t))) for t in ("gold/fleet_daily", "gold/fleet_periods")
    }
    fleet.run("fleet", start=MONTHS[0], end=MONTHS[1], rerun=True)
    for table, rows in before.items():
        assert sorted(map(repr, fleet.rows(table))) == rows, table


def test_a_withdrawn_vehicle_is_erased_and_a_rerun_compares_the_others_alone(fleet, tmp_path):
    withdrawal = f"{TENANT},{WITHDRAWN},withdrawn,2026-11-20T09:00:00Z,driver"
    with fleet.withdrawn(tmp_path, withdrawal) as erase:
        for table in ("gold/fleet_daily", "gold/fleet_periods"):
            vehicles = {r["vehicle"] for r in fleet.rows(table)}
            assert vehicles == {"van-01", "truck-01"}, table
        assert "gold/fleet_daily" in fleet.log(erase)

        fleet.run("fleet", start=MONTHS[0], end=MONTHS[1], rerun=True)
        _check_against_landing(fleet, leave_out=frozenset({WITHDRAWN}))
        assert {r["fleet_vehicles"] for r in fleet.rows("gold/fleet_periods")} == {2}
