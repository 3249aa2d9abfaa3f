"""The bronze load as its table ages: its time after LOADS small live loads, beside the first
load's, then after the maintenance job's work (OPTIMIZE, VACUUM, checkpoint) on that same
aged table.

Each load lands FILES files of BATCHES windows (two metrics each: 2 * FILES * BATCHES
rows) following the previous load's windows, as a live fleet's loads do, and runs
`bronze_load.load` in one warm session. Times are medians of WINDOW loads: the first
WINDOW loads after a warm-up load on another table, the last WINDOW of the LOADS loads,
and WINDOW loads right after maintenance. The environment may shrink it for a quick
look: EDGEBATCH_BENCH_LOADS (default 300); EDGEBATCH_BENCH_BUDGET_S stops the aging
early on a machine too busy for it (the figures then name the loads actually made).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import Figure

LOADS = int(os.environ.get("EDGEBATCH_BENCH_LOADS", "300"))
BUDGET_S = float(os.environ.get("EDGEBATCH_BENCH_BUDGET_S", "inf"))
FILES, BATCHES = 2, 200
WINDOW = 10


def _land(zone, salt: str, offset: float) -> None:
    from bench.collector import _land_files

    _land_files(zone, salt, offset, files=FILES, batches=BATCHES)


class _Aging:
    """One warehouse whose bronze table takes load after load."""

    def __init__(self, spark, home: Path, name: str) -> None:
        from edgebatch.settings import Settings, WarehouseSettings
        from edgebatch.warehouse.landing import LandingZone, LocalStore
        from edgebatch.warehouse.uri import WarehouseRoot

        self.spark = spark
        self.root = WarehouseRoot.parse((home / name / "warehouse").as_uri())
        self.settings = Settings(home=home, warehouse=WarehouseSettings(root=self.root.uri()))
        self.zone = LandingZone(self.root, LocalStore(), "bench")
        self.loads = 0

    def load(self) -> float:
        from edgebatch.jobs.bronze_load import load

        _land(self.zone, f"n{self.loads}", self.loads * FILES * BATCHES * 60.0)
        start = time.perf_counter()
        result = load(self.spark, self.settings)
        seconds = time.perf_counter() - start
        inserted = result["tables"]["bronze/edge_batches"]["inserted"]
        assert inserted == FILES * BATCHES * 2, result
        self.loads += 1
        return seconds


def aged_load_times(home: Path) -> dict[str, float]:
    from edgebatch.framework.session import build_session
    from edgebatch.settings import Settings
    from edgebatch.warehouse import catalog
    from edgebatch.warehouse.inventory import table_state
    from edgebatch.warehouse.maintenance import maintain

    spark = build_session(Settings(home=home), overrides={"spark.ui.enabled": "false"})
    spark.sparkContext.setLogLevel("ERROR")
    _Aging(spark, home, "warm-up").load()
    table = _Aging(spark, home, "aging")
    began = time.perf_counter()
    times: list[float] = []
    while len(times) < LOADS and (len(times) < 2 * WINDOW or _since(began) < BUDGET_S):
        times.append(table.load())
    aging_s = _since(began)
    # The baseline, measured in the same minutes as the aged table (a busy machine's speed
    # drifts over a quarter of an hour): loads into a new table, alternating with it.
    fresh = _Aging(spark, home, "fresh")
    fresh.load()  # creates its tables, as the aging table's first load did
    aged, new = _alternate(table, fresh)
    before = table_state(table.root, catalog.EDGE_BATCHES)
    print(f"   {len(times)} loads in {aging_s:.0f} s; maintenance", flush=True)
    start = time.perf_counter()
    report = maintain(spark, table.root, catalog.EDGE_BATCHES)
    maintenance_s = time.perf_counter() - start
    print(f"   {report.describe()} in {maintenance_s:.0f} s", flush=True)
    maintained, new_after = _alternate(table, fresh)
    return {
        "first": statistics.median(times[:WINDOW]),
        "last": statistics.median(times[-WINDOW:]),
        "new": statistics.median(new),
        "aged": statistics.median(aged),
        "new_after": statistics.median(new_after),
        "maintained": statistics.median(maintained),
        "maintenance_s": maintenance_s,
        "aging_s": aging_s,
        "files_before": float(report.files_before),
        "files_after": float(report.files_after),
        "version": float(before.version or 0),
        "loads": float(len(times)),
    }


def _alternate(a: _Aging, b: _Aging) -> tuple[list[float], list[float]]:
    times_a, times_b = [], []
    for _ in range(WINDOW):
        times_a.append(a.load())
        times_b.append(b.load())
    return times_a, times_b


def _since(start: float) -> float:
    return time.perf_counter() - start


def run() -> list[Figure]:
    with tempfile.TemporaryDirectory() as tmp:
        t = aged_load_times(Path(tmp))
    loads = int(t["loads"])
    rows = FILES * BATCHES * 2
    shape = (
        f"{rows} rows from {FILES} files per load, each load's windows following the "
        f"previous load's; medians of {WINDOW} loads; warm session"
    )
    return [
        Figure(
            f"bronze_load_s_after_{loads}_loads",
            t["aged"],
            "s",
            baseline=t["new"],
            baseline_name="loads into a new table, alternating with these",
            note=f"informational: {shape}; no maintenance; the table then had "
            f"{t['files_before']:.0f} data files at version {t['version']:.0f}; the "
            f"{loads} loads took {t['aging_s']:.0f} s; the first {WINDOW} of them "
            f"{t['first']:.2f} s each, the last {WINDOW} {t['last']:.2f} s (sequential, "
            "so the machine's drift is in that comparison)",
        ),
        Figure(
            f"bronze_load_s_after_{loads}_loads_maintained",
            t["maintained"],
            "s",
            baseline=t["new_after"],
            baseline_name="loads into a new table, alternating with these",
            note=f"informational: the same aged table right after the maintenance job's "
            f"work (OPTIMIZE to 128 MiB files, VACUUM at the 7-day retention, checkpoint): "
            f"{t['files_before']:.0f} files became {t['files_after']:.0f}",
        ),
        Figure(
            "maintenance_s_bronze_edge_batches",
            t["maintenance_s"],
            "s",
            note=f"informational: OPTIMIZE, VACUUM (with a dry run to count) and a "
            f"checkpoint of bronze/edge_batches after {loads} loads",
        ),
    ]
