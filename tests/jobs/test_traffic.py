"""Traffic: every figure of `gold/traffic_profile` and `gold/traffic_event_days` equal to a
plain-Python computation over the same landing files (read with DuckDB) and events
file, a rerun changing nothing, and the events file checked as it loads."""

from __future__ import annotations

import csv
import datetime as dt
import math
import random
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edgebatch.jobs.reference_load import FILES, ReferenceDataError, read_csv
from edgebatch.jobs.traffic import WEEKDAYS
from tests.support.mobility import (
    Pipeline,
    Reading,
    devices_of,
    land,
    landed_windows,
    pipeline,
    reference_folder,
    window_message,
)

TENANT = "demo-traffic"
# Monday to Thursday; examples/reference/events.csv names the 3rd (route-a) and the 5th (both)
DAYS = [dt.date(2026, 11, d) for d in (2, 3, 4, 5)]
MONTH = dt.date(2026, 11, 1)


def _messages(seed: int = 19) -> list:
    rng = random.Random(seed)
    out = []
    for tenant, device in sorted(devices_of("traffic_counter")):
        for day in DAYS:
            midnight = dt.datetime.combine(day, dt.time(0), dt.UTC)
            # half-hour windows by night, hourly by day: counts weigh by minutes
            starts = [(midnight + dt.timedelta(minutes=30 * i), 30) for i in range(12)]
            starts += [(midnight + dt.timedelta(hours=h), 60) for h in range(6, 24)]
            for start, minutes in starts:
                peak = 9.0 * math.cos(2 * math.pi * (start.hour - 8) / 24)
                n = rng.randint(3, 8)
                out.append(
                    window_message(
                        tenant,
                        device,
                        start,
                        minutes,
                        {
                            "vehicles": Reading(
                                "vehicles/min",
                                [max(0.0, rng.gauss(11 + peak, 3)) for _ in range(n)],
                            ),
                            "avg_speed": Reading(
                                "km/h", [rng.gauss(46 - peak, 5) for _ in range(n)]
                            ),
                            "travel_time": Reading(
                                "s", [rng.gauss(260 + 8 * peak, 25) for _ in range(n)]
                            ),
                        },
                    )
                )
    late = window_message(
        TENANT,
        "counter-01",
        dt.datetime(2026, 11, 3, 8, tzinfo=dt.UTC),
        60,
        {"travel_time": Reading("s", [900.0, 950.0])},
        revision=1,
    )
    return [*out, late, out[40]]  # a late revision and a batch landed twice


def _events() -> dict[tuple[str, dt.date], list[tuple[str, str]]]:
    from tests.support.mobility import EXAMPLES

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
        route = routes[(tenant, device)]
        names = sorted(
            {n for n, rs in events[(tenant, start.date())] if rs == "all" or route in rs.split(";")}
        )
        minutes = (we - ws) / 60
        facts.append(
            {
                "route": route,
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
        groups[(f["route"], "hour_of_day", f["hour"], f"{f['hour']:02d}:00")].append(f)
        groups[(f["route"], "day_of_week", f["weekday"], WEEKDAYS[f["weekday"] - 1])].append(f)
        kind = (1, "event") if f["events"] else (0, "ordinary")
        groups[(f["route"], "day_type", *kind)].append(f)
    profile = {(r, d, b): {"label": label, **totals(g)} for (r, d, b, label), g in groups.items()}

    event_days = {}
    for route in set(routes.values()):
        ordinary = totals([f for f in facts if f["route"] == route and not f["events"]])
        for date in {f["date"] for f in facts if f["route"] == route and f["events"]}:
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
def traffic(spark, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    home = tmp_path_factory.mktemp("traffic")
    for p in pipeline(spark, home, reference_folder(home / "reference", TENANT)):
        messages = _messages()
        land(p.root, messages)
        p.load(DAYS)
        p.run("traffic", partitions=(f"{MONTH:%Y-%m}",))
        yield p


@pytest.mark.integration
@pytest.mark.slow
def test_traffic_figures_equal_an_independent_computation_over_the_landing_files(traffic):
    profile, event_days = expected(landed_windows(traffic.root))
    got = {
        (r["route"], r["dimension"], r["bucket"]): r for r in traffic.rows("gold/traffic_profile")
    }
    assert set(got) == set(profile)
    for key, want in profile.items():
        assert (got[key]["tenant"], got[key]["month"]) == (TENANT, MONTH)
        _same(got[key], want, key)
    got_days = {(r["route"], r["date"]): r for r in traffic.rows("gold/traffic_event_days")}
    assert (
        set(got_days)
        == set(event_days)
        == {
            ("route-a", dt.date(2026, 11, 3)),
            ("route-a", dt.date(2026, 11, 5)),
            ("route-b", dt.date(2026, 11, 5)),
        }
    )
    for key, want in event_days.items():
        _same(got_days[key], want, key)
    # 24 hours, 4 weekdays, both day types, for each route
    for route in ("route-a", "route-b"):
        dims = [k[1] for k in got if k[0] == route]
        assert (dims.count("hour_of_day"), dims.count("day_of_week"), dims.count("day_type")) == (
            24,
            4,
            2,
        )


@pytest.mark.integration
@pytest.mark.slow
def test_rerunning_the_month_leaves_the_tables_unchanged(traffic):
    tables = ("gold/traffic_profile", "gold/traffic_event_days")
    before = {t: sorted(map(repr, traffic.rows(t))) for t in tables}
    traffic.run("traffic", partitions=(f"{MONTH:%Y-%m}",), rerun=True)
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
