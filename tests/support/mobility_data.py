"""The fleet and traffic tests' landing messages: deterministic, plausible, and made to
exercise every rule (harsh events, idle, every speed band, windows of two lengths,
a late revision and a batch landed twice per tenant). Each test module registers its
builder for the session's warehouse (tests/support/landed.py)."""

from __future__ import annotations

import datetime as dt
import math
import random

from tests.support.landed import Landing, Reading, devices_of

# Friday to Monday across a month's end: two months of one quarter, four weekdays;
# examples/reference/events.csv names two of the days for the traffic routes
DAYS = [dt.date(2026, 10, 30), dt.date(2026, 10, 31), dt.date(2026, 11, 1), dt.date(2026, 11, 2)]
MONTHS = ("2026-10", "2026-11")
FLEET_WINDOW_MIN = 30


def _vehicle_readings(rng: random.Random, regime: str) -> dict[str, Reading]:
    n = rng.randint(3, 8)
    speed, rpm, fuel = {
        "city": (lambda: max(0.0, rng.gauss(35, 12)), 1700, 6.0),
        "rural": (lambda: rng.uniform(55, 85), 2200, 7.5),
        "highway": (lambda: rng.uniform(92, 125), 2600, 9.0),
        "idle": (lambda: rng.choice((0.0, 0.0, 0.5, 1.5)), 780, 0.9),
        "off": (lambda: 0.0, 0, 0.0),
    }[regime]
    accel = [rng.gauss(0, 0.8) for _ in range(n)]
    if rng.random() < 0.12:
        accel[rng.randrange(n)] = -5.5  # harsh braking
    if rng.random() < 0.06:
        accel[rng.randrange(n)] = 4.6  # harsh acceleration
    return {
        "speed": Reading("km/h", [speed() for _ in range(n)]),
        "acceleration": Reading("m/s2", accel),
        "engine_rpm": Reading(
            "rpm", [max(0.0, rng.gauss(rpm, 60)) if rpm else 0.0 for _ in range(n)]
        ),
        "fuel_rate": Reading(
            "l/h", [max(0.0, rng.gauss(fuel, 0.3)) if fuel else 0.0 for _ in range(n)]
        ),
    }


def fleet_landing(seed: int = 18) -> Landing:
    """Half-hour windows from 06:00 to 14:00 of each day, per vehicle, in random regimes."""
    rng = random.Random(seed)
    landing = Landing()
    out = []
    for tenant, device in sorted(devices_of("vehicle")):
        for day in DAYS:
            for slot in range(16):
                start = dt.datetime.combine(day, dt.time(6), dt.UTC) + dt.timedelta(
                    minutes=FLEET_WINDOW_MIN * slot
                )
                regime = rng.choice(("city", "city", "rural", "highway", "idle", "off"))
                readings = _vehicle_readings(rng, regime)
                out.append(landing.window(tenant, device, start, FLEET_WINDOW_MIN, readings))
    landing.window(
        "demo-fleet",
        "vehicle-01",
        dt.datetime(2026, 11, 1, 7, 0, tzinfo=dt.UTC),
        FLEET_WINDOW_MIN,
        {"speed": Reading("km/h", [130.0, 128.5])},
        revision=1,
    )
    landing.add([out[5]])  # landed twice: bronze keeps one
    first_alarm = len(landing.messages)
    for device, at, metric, state in FLEET_ALARMS:
        value = -5.5 if metric == "acceleration" else 140.0
        landing.alarm("demo-fleet", device, at, metric, value, -4.0, "harsh", state)
    landing.add([landing.messages[first_alarm]])  # an alarm landed twice: bronze keeps one
    return landing


def _at(day: int, hour: int, minute: int) -> dt.datetime:
    month = 10 if day > 15 else 11
    return dt.datetime(2026, month, day, hour, minute, tzinfo=dt.UTC)


# The vehicles' alarms: (device, time, metric, state). Two acceleration alarms in one
# window of vehicle-01 (one harsh-braking window at most, two alarms), a clear and a
# speed alarm (neither counted), an unregistered device, a day without windows.
FLEET_ALARMS = [
    ("vehicle-01", _at(30, 7, 5), "acceleration", "raised"),
    ("vehicle-01", _at(30, 7, 12), "acceleration", "cleared"),
    ("vehicle-01", _at(30, 7, 20), "acceleration", "raised"),
    ("vehicle-01", _at(1, 9, 10), "acceleration", "raised"),
    ("vehicle-01", _at(29, 9, 0), "acceleration", "raised"),  # no window that day
    ("vehicle-02", _at(31, 10, 0), "acceleration", "raised"),
    ("vehicle-03", _at(2, 8, 0), "acceleration", "raised"),
    ("vehicle-03", _at(2, 8, 5), "speed", "raised"),
    ("vehicle-99", _at(2, 8, 0), "acceleration", "raised"),  # not in the registry
]


def traffic_landing(seed: int = 19) -> Landing:
    """Per counter and day: half-hour windows by night, hourly ones by day (counts weigh
    by minutes), with a morning peak of vehicles and travel time."""
    rng = random.Random(seed)
    landing = Landing()
    out = []
    for tenant, device in sorted(devices_of("traffic_counter")):
        for day in DAYS:
            midnight = dt.datetime.combine(day, dt.time(0), dt.UTC)
            starts = [(midnight + dt.timedelta(minutes=30 * i), 30) for i in range(12)]
            starts += [(midnight + dt.timedelta(hours=h), 60) for h in range(6, 24)]
            for start, minutes in starts:
                peak = 9.0 * math.cos(2 * math.pi * (start.hour - 8) / 24)
                n = rng.randint(3, 8)
                readings = {
                    "vehicles": Reading(
                        "vehicles/min", [max(0.0, rng.gauss(11 + peak, 3)) for _ in range(n)]
                    ),
                    "avg_speed": Reading("km/h", [rng.gauss(46 - peak, 5) for _ in range(n)]),
                    "travel_time": Reading("s", [rng.gauss(260 + 8 * peak, 25) for _ in range(n)]),
                }
                out.append(landing.window(tenant, device, start, minutes, readings))
    landing.window(
        "demo-traffic",
        "counter-01",
        dt.datetime(2026, 11, 2, 8, tzinfo=dt.UTC),
        60,
        {"travel_time": Reading("s", [900.0, 950.0])},
        revision=1,
    )
    landing.add([out[40]])  # landed twice: bronze keeps one
    return landing
