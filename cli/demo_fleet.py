"""The demo's simulated fleet: one agent per registered device, replaying a month fast.

Devices come from the reference folder's `devices.csv` (their tenant, id and kind), so
every reading the agents send belongs to a device the warehouse knows, and the
registry's installation dates, removals and consent decide what silver keeps. Each
agent runs the simulator with its kind's profile (`edge/profiles.py`) from the first
instant of the replayed span, one reading per metric per `sample_s`, as fast as it
can (`realtime = false`): a month of readings in about a minute. An agent is done
when the landing zone holds every window of the span for its device (`Replay.windows`).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
from pathlib import Path

from edgebatch.edge.profiles import PROFILES


@dataclasses.dataclass(frozen=True)
class DemoDevice:
    tenant: str
    device: str
    kind: str


@dataclasses.dataclass(frozen=True)
class Replay:
    """What the agents replay: `days` from `start` (UTC midnight), windows of `window_s`."""

    start: dt.date
    days: int
    window_s: float = 3600.0
    sample_s: float = 60.0

    @property
    def start_ts(self) -> float:
        return dt.datetime.combine(self.start, dt.time(), dt.UTC).timestamp()

    @property
    def end(self) -> dt.date:
        return self.start + dt.timedelta(days=self.days)

    @property
    def windows(self) -> int:
        """Windows each device sends for the span."""
        return int(self.days * 86400 // self.window_s)

    def readings(self, kind: str) -> int:
        """Readings one device of `kind` simulates: every metric every sample over the span,
        and one round more just past its end. A window closes when event time passes its
        end (or after its own length on the wall clock): those last readings close the
        span's last window, and open one beyond the span that is never sent."""
        metrics = len(PROFILES[kind])
        return metrics * int(self.days * 86400 / self.sample_s) + metrics + 1


def last_full_month(today: dt.date) -> tuple[dt.date, int]:
    """The first day of the month before `today`'s, and its number of days."""
    first_this = today.replace(day=1)
    last_prev = first_this - dt.timedelta(days=1)
    return last_prev.replace(day=1), last_prev.day


def read_devices(reference: Path) -> list[DemoDevice]:
    """The devices of `reference/devices.csv` with a simulator profile, in file order."""
    path = reference / "devices.csv"
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    devices = []
    seen = set()
    for row in rows:
        key = (row["tenant"], row["device"])
        if key in seen or row["kind"] not in PROFILES:
            continue
        seen.add(key)
        devices.append(DemoDevice(row["tenant"], row["device"], row["kind"]))
    if not devices:
        raise ValueError(f"{path} lists no device of a kind the simulator knows")
    return devices


def choose(devices: list[DemoDevice], count: int) -> list[DemoDevice]:
    """`count` devices taking every kind in turn, so a small fleet still has each kind."""
    by_kind: dict[str, list[DemoDevice]] = {}
    for d in devices:
        by_kind.setdefault(d.kind, []).append(d)
    chosen: list[DemoDevice] = []
    while len(chosen) < min(count, len(devices)):
        for kind in sorted(by_kind):
            if by_kind[kind] and len(chosen) < count:
                chosen.append(by_kind[kind].pop(0))
    return chosen


def agent_config(
    device: DemoDevice, replay: Replay, *, data_dir: Path, port: int, seed: int
) -> str:
    """The agent's TOML: its kind's profile, replayed from the start of the span."""
    rate = len(PROFILES[device.kind]) / replay.sample_s
    past = (dt.date.today() - replay.start).days * 86400 + 2 * 86400
    return f"""
[agent]
tenant = "{device.tenant}"
device = "{device.device}"
data_dir = "{data_dir}"
poll_interval_s = 0.01
unknown_metrics = "accept"

[window]
size_s = {replay.window_s}
allowed_lateness_s = 5.0
idle_timeout_s = 1.0
correction_delay_s = 1.0
max_past_s = {float(past)}

[mqtt]
host = "127.0.0.1"
port = {port}
receipt_timeout_s = 20.0
drain_rate_per_s = 2000.0
max_inflight = 100

[health]
interval_s = 2.0

[[source]]
kind = "simulator"
profile = "{device.kind}"
rate_hz = {rate!r}
total = {replay.readings(device.kind)}
realtime = false
start_ts = {replay.start_ts}
seed = {seed}
"""
