"""Simulator profiles: plausible metrics for each kind of device the warehouse knows.

`[[source]] kind = "simulator", profile = "water_meter"` gives the metrics below
without listing them; `metrics` entries of the same name override a profile's.
Figures are typical, not measured: enough for the demo's bills, vitals, OEE and
traffic to look like the real thing (a morning peak of water flow, heart rate higher
by day, a bottling line that sometimes stops). Values move as
`base + daily_amplitude * cos(2*pi*(hour - peak_hour)/24) + noise`, clamped to
`[floor, ceiling]`, with anomalies as in any simulator metric.

Plain data: the agent imports no more for it than a dict.
"""

from __future__ import annotations

from typing import Any

PROFILES: dict[str, tuple[dict[str, Any], ...]] = {
    "water_meter": (
        # litres per minute through the meter; night flow near zero, peaks morning
        {"name": "flow", "unit": "l/min", "base": 5.0, "noise": 2.0,
         "daily_amplitude": 4.5, "peak_hour": 7.0, "floor": 0.0},
        {"name": "pressure", "unit": "bar", "base": 3.2, "noise": 0.12,
         "daily_amplitude": -0.2, "peak_hour": 7.0, "anomaly_rate": 0.002,
         "anomaly_size": -1.2, "floor": 0.0},
        {"name": "water_temperature", "unit": "C", "base": 12.0, "noise": 0.4,
         "daily_amplitude": 1.0, "peak_hour": 16.0},
    ),
    "patient_monitor": (
        {"name": "heart_rate", "unit": "bpm", "base": 72.0, "noise": 5.0,
         "daily_amplitude": 8.0, "peak_hour": 15.0, "anomaly_rate": 0.001,
         "anomaly_size": 45.0, "floor": 30.0, "ceiling": 220.0},
        {"name": "systolic_bp", "unit": "mmHg", "base": 122.0, "noise": 7.0,
         "daily_amplitude": 6.0, "peak_hour": 10.0, "floor": 70.0, "ceiling": 230.0},
        {"name": "diastolic_bp", "unit": "mmHg", "base": 79.0, "noise": 5.0,
         "daily_amplitude": 4.0, "peak_hour": 10.0, "floor": 40.0, "ceiling": 140.0},
        {"name": "spo2", "unit": "%", "base": 97.0, "noise": 0.8, "anomaly_rate": 0.0005,
         "anomaly_size": -8.0, "floor": 70.0, "ceiling": 100.0},
    ),
    "vehicle": (
        {"name": "speed", "unit": "km/h", "base": 38.0, "noise": 14.0,
         "daily_amplitude": 12.0, "peak_hour": 13.0, "floor": 0.0, "ceiling": 160.0},
        # longitudinal acceleration: harsh braking shows as a large negative anomaly
        {"name": "acceleration", "unit": "m/s2", "base": 0.0, "noise": 0.7,
         "anomaly_rate": 0.001, "anomaly_size": -5.5},
        {"name": "engine_rpm", "unit": "rpm", "base": 1700.0, "noise": 350.0,
         "floor": 650.0, "ceiling": 6000.0},
        {"name": "fuel_rate", "unit": "l/h", "base": 5.5, "noise": 2.0, "floor": 0.0},
    ),
    "bottling_line": (
        # a stop shows as an anomaly taking the rate to the floor of zero
        {"name": "bottles", "unit": "bottles/min", "base": 300.0, "noise": 12.0,
         "anomaly_rate": 0.002, "anomaly_size": -400.0, "floor": 0.0},
        {"name": "rejects", "unit": "bottles/min", "base": 3.0, "noise": 1.5, "floor": 0.0},
        {"name": "fill_volume", "unit": "ml", "base": 500.5, "noise": 1.2},
        {"name": "line_speed", "unit": "%", "base": 92.0, "noise": 3.0, "floor": 0.0,
         "ceiling": 100.0},
    ),
    "fitness_tracker": (
        {"name": "steps", "unit": "steps/min", "base": 18.0, "noise": 14.0,
         "daily_amplitude": 22.0, "peak_hour": 18.0, "floor": 0.0},
        {"name": "distance", "unit": "m/min", "base": 13.0, "noise": 10.0,
         "daily_amplitude": 16.0, "peak_hour": 18.0, "floor": 0.0},
        {"name": "heart_rate", "unit": "bpm", "base": 74.0, "noise": 7.0,
         "daily_amplitude": 12.0, "peak_hour": 18.0, "floor": 40.0, "ceiling": 200.0},
    ),
    "traffic_counter": (
        {"name": "vehicles", "unit": "vehicles/min", "base": 11.0, "noise": 3.5,
         "daily_amplitude": 9.0, "peak_hour": 8.0, "floor": 0.0},
        {"name": "avg_speed", "unit": "km/h", "base": 46.0, "noise": 6.0,
         "daily_amplitude": -8.0, "peak_hour": 8.0, "floor": 0.0},
        {"name": "travel_time", "unit": "s", "base": 260.0, "noise": 30.0,
         "daily_amplitude": 70.0, "peak_hour": 8.0, "floor": 60.0,
         "anomaly_rate": 0.001, "anomaly_size": 600.0},
    ),
}  # fmt: skip


def profile_names() -> list[str]:
    return sorted(PROFILES)
