"""Traffic: every figure of `gold/traffic_profile` and `gold/traffic_event_days` equal to a
plain-Python computation over the same landing files (read with DuckDB) and events
file, a rerun changing nothing, and the events file checked as it loads."""

from __future__ import annotations

import csv
import datetime as dt
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from edgebatch.jobs.reference_load import FILES, ReferenceDataError, read_csv
from edgebatch.jobs.traffic import WEEKDAYS
from tests.support.landed import EXAMPLES, Warehouse, devices_of, landed_windows, lands
from tests.support.mobility_data import MONTHS, traffic_landing

TENANT = "demo-traffic"
# examples/reference/events.csv: a trade fair on route-a on 2026-10-31, a marathon on
# every route on 2026-11-02
EVENT_DAYS = {
    ("route-a", dt.date(2026, 10, 31)): "trade fair",
    ("route-a", dt.date(2026, 11, 2)): "city marathon",
    ("route-b", dt.date(2026, 11, 2)): "city marathon",
}


lands("traffic")(traffic_landing)


def _events() -> dict[tuple[str, dt.date], list[tuple[str, str]]]:
    out: dict[tuple[str, dt.date], list[tuple[str, str]]] = defaultdict(list)
    with (EXAMPLES / "events.csv").open() as f:
        for r in csv.DictReader(f):
            out[(r["tenant"], dt.date.fromisoformat(r["date"]))].append((r["name"], r["routes"]))
    return out


def expected(windows: list[dict[str, Any]]) -> tuple[dict, dict]:
    """The profile rows by (route, dimension, bucket) and the event-day rows by (route, date)."""
    routes = devices_of("traffic_counter")
    events = _events()
    per_window: dict[tuple, dict[str, dict]] = defaultdict(dict)
    for w in windows:
        per_window[(w["tenant"], w["device"], w["ws"], w["we"])][w["metric"]] = w
    facts = []
    for (tenant, device, ws, we), m in per_window.items():
        start = dt.datetime.fromtimestamp(ws, dt.UTC)
        route = routes.get((tenant, device))
        if route is None:  # another kind of device
            continue
        names = sorted(
            {n for n, rs in events[(tenant, start.date())] if rs == "all" or route in rs.split(";")}
        )
        minutes = (we - ws) / 60
        facts.append(
            {
                "route": route,
                "month": start.date().replace(day=1),
                "date": start.date(),
                "hour": start.hour,
                "weekday": start.isoweekday(),
                "events": "; ".join(names),
                "minutes": minutes,
                "vehicles": m["vehicles"]["mean"] * minutes if "vehicles" in m else 0.0,
                "travel": (m["travel_time"]["sum"], m["travel_time"]["count"]),
                "speed": (m["avg_speed"]["sum"], m["avg_speed"]["count"]),
            }
        )

    def totals(group: list[dict]) -> dict[str, Any]:
        days = len({f["date"] for f in group})
        hours = sum(f["minutes"] for f in group) / 60
        vehicles = sum(f["vehicles"] for f in group)
        return {
            "days": days,
            "windows": len(group),
            "observed_hours": hours,
            "vehicles": vehicles,
            "vehicles_per_day": vehicles / days,
            "vehicles_per_hour": vehicles / hours,
            "avg_travel_time_s": sum(f["travel"][0] for f in group)
            / sum(f["travel"][1] for f in group),
            "avg_speed_kmh": sum(f["speed"][0] for f in group) / sum(f["speed"][1] for f in group),
        }

    groups: dict[tuple, list[dict]] = defaultdict(list)
    for f in facts:
        key = (f["month"], f["route"])
        groups[(*key, "hour_of_day", f["hour"], f"{f['hour']:02d}:00")].append(f)
        groups[(*key, "day_of_week", f["weekday"], WEEKDAYS[f["weekday"] - 1])].append(f)
        kind = (1, "event") if f["events"] else (0, "ordinary")
        groups[(*key, "day_type", *kind)].append(f)
    profile = {
        (m, r, d, b): {"label": label, **totals(g)} for (m, r, d, b, label), g in groups.items()
    }

    event_days = {}
    for route, date in {(f["route"], f["date"]) for f in facts if f["events"]}:
        month = date.replace(day=1)
        ordinary = totals(
            [f for f in facts if (f["route"], f["month"]) == (route, month) and not f["events"]]
        )
        day = totals([f for f in facts if f["route"] == route and f["date"] == date])
        (names,) = {f["events"] for f in facts if f["route"] == route and f["date"] == date}
        event_days[(route, date)] = {
            "events": names,
            "vehicles": day["vehicles"],
            "avg_travel_time_s": day["avg_travel_time_s"],
            "ordinary_days": ordinary["days"],
            "ordinary_vehicles_per_day": ordinary["vehicles_per_day"],
            "ordinary_avg_travel_time_s": ordinary["avg_travel_time_s"],
            "vehicles_vs_ordinary": day["vehicles"] / ordinary["vehicles_per_day"],
            "travel_time_vs_ordinary": day["avg_travel_time_s"] / ordinary["avg_travel_time_s"],
        }
    return profile, event_days


def _same(got: dict[str, Any], want: dict[str, Any], where: Any) -> None:
    for key, value in want.items():
        if isinstance(value, float):
            assert math.isclose(got[key], value, rel_tol=1e-9), (where, key, got[key], value)
        else:
            assert got[key] == value, (where, key, got[key], value)


@pytest.fixture(scope="module")
def traffic(gold_warehouse: Warehouse) -> Warehouse:
    gold_warehouse.run("traffic", start=MONTHS[0], end=MONTHS[1])
    return gold_warehouse


@pytest.mark.integration
@pytest.mark.slow
def test_traffic_figures_equal_an_independent_computation_over_the_landing_files(traffic):
    profile, event_days = expected(landed_windows(traffic))
    rows = traffic.rows("gold/traffic_profile")
    assert {r["tenant"] for r in rows} == {TENANT}
    got = {(r["month"], r["route"], r["dimension"], r["bucket"]): r for r in rows}
    assert set(got) == set(profile)
    for key, want in profile.items():
        _same(got[key], want, key)
    days = traffic.rows("gold/traffic_event_days")
    got_days = {(r["route"], r["date"]): r for r in days}
    assert set(got_days) == set(event_days) == set(EVENT_DAYS)
    for key, want in event_days.items():
        assert got_days[key]["month"] == key[1].replace(day=1)
        _same(got_days[key], want, key)
    assert {k: r["events"] for k, r in got_days.items()} == EVENT_DAYS
    # per route and month: 24 hours, two weekdays, and the event bucket beside the
    # ordinary one only in a month with an event day for the route
    for month in MONTHS:
        first = dt.date.fromisoformat(month + "-01")
        for route in ("route-a", "route-b"):
            dims = [k[2] for k in got if k[:2] == (first, route)]
            counts = [dims.count(d) for d in ("hour_of_day", "day_of_week", "day_type")]
            events = any(r == route and d.replace(day=1) == first for r, d in EVENT_DAYS)
            assert counts == [24, 2, 1 + events], (month, route)


@pytest.mark.integration
@pytest.mark.slow
def test_rerunning_the_months_leaves_the_tables_unchanged(traffic):
    tables = ("gold/traffic_profile", "gold/traffic_event_days")
    before = {t: sorted(map(repr, traffic.rows(t))) for t in tables}
    traffic.run("traffic", start=MONTHS[0], end=MONTHS[1], rerun=True)
    for table in tables:
        assert sorted(map(repr, traffic.rows(table))) == before[table], table


@pytest.mark.parametrize(
    ("routes", "message"),
    [
        ("", "'routes': '' must be 'all' or route names"),
        ("route-a;;route-b", "must be 'all' or route names"),
        ("all;route-a", "names 'all' beside routes"),
    ],
)
def test_an_events_file_with_bad_routes_names_line_and_column(tmp_path: Path, routes, message):
    spec, parsers = FILES["events.csv"]
    path = tmp_path / "events.csv"
    path.write_text(
        f"tenant,date,name,routes\nt1,2026-11-03,fair,route-a\nt1,2026-11-04,match,{routes}\n"
    )
    with pytest.raises(ReferenceDataError, match="line 3, column 'routes'") as err:
        read_csv(path, parsers, spec.keys)
    assert message in str(err.value)


def test_an_events_file_parses_all_and_route_lists(tmp_path: Path):
    spec, parsers = FILES["events.csv"]
    path = tmp_path / "events.csv"
    path.write_text("tenant,date,name,routes\nt1,2026-11-03,fair,all\nt1,2026-11-04,match, a ; b\n")
    assert read_csv(path, parsers, spec.keys) == [
        ("t1", dt.date(2026, 11, 3), "fair", "all"),
        ("t1", dt.date(2026, 11, 4), "match", "a;b"),
    ]
