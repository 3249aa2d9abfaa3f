"""Simulator profiles: every kind of device builds from config, its values stay in their
plausible bounds, the day has its shape, and a config's own metric overrides the profile's."""

from __future__ import annotations

import statistics

import pytest

from edgebatch.edge.config import from_dict
from edgebatch.edge.profiles import PROFILES, profile_names
from edgebatch.edge.sources import SimulatorSource
from edgebatch.edge.window import Rejects
from edgebatch.errors import ConfigError

AGENT = {"agent": {"tenant": "t", "device": "d"}}
START = 1767225600.0  # 2026-01-01T00:00:00Z


def _readings(profile: str, total: int, **extra):
    table = {"kind": "simulator", "profile": profile, "realtime": False, "start_ts": START}
    cfg = from_dict({**AGENT, "source": [{**table, "rate_hz": 0.1, "total": total, **extra}]})
    return SimulatorSource(cfg.sources[0].config, None, Rejects()).poll(0.0, total)


@pytest.mark.parametrize("profile", profile_names())
def test_each_profile_yields_its_metrics_within_their_bounds(profile):
    readings = _readings(profile, 40_000)
    specs = {p["name"]: p for p in PROFILES[profile]}

    assert {name for _, name, _, _ in readings} == set(specs)
    for _, name, value, unit in readings:
        spec = specs[name]
        assert unit == spec["unit"]
        assert spec.get("floor", float("-inf")) <= value <= spec.get("ceiling", float("inf"))


def test_water_flow_peaks_in_the_morning_and_nearly_stops_at_night():
    readings = _readings("water_meter", 3 * 8640)  # three days, one reading per 10 s
    by_hour: dict[int, list[float]] = {}
    for ts, name, value, _ in readings:
        if name == "flow":
            by_hour.setdefault(int((ts % 86400) // 3600), []).append(value)
    assert statistics.fmean(by_hour[7]) > 8 > 3 > statistics.fmean(by_hour[19])


def test_a_configured_metric_overrides_the_profiles_and_others_join_it():
    metrics = [{"name": "flow", "unit": "m3/h", "base": 1.0, "noise": 0.0},
               {"name": "battery", "unit": "V", "base": 3.6, "noise": 0.0}]  # fmt: skip
    readings = _readings("water_meter", 400, metrics=metrics)
    units = {name: unit for _, name, _, unit in readings}
    assert units == {"flow": "m3/h", "pressure": "bar", "water_temperature": "C", "battery": "V"}
    assert {v for _, n, v, _ in readings if n == "battery"} == {3.6}


def test_an_unknown_profile_is_refused_naming_the_known_ones():
    with pytest.raises(ConfigError, match=r"source\[0\].*profile must be one of bottling_line"):
        from_dict({**AGENT, "source": [{"kind": "simulator", "profile": "toaster"}]})
