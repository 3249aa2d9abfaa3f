"""What every benchmark shares: figures compared with a baseline measured in the same run.

A benchmark module `bench/NAME.py` defines `run() -> list[Figure]`; `bench/run.py`
discovers the modules, calls them, and writes `bench/results/NAME.json` and
`bench/results/NAME.md` (plus `bench/results/README.md`, the index the README links).
Timed tests are not used for targets: these machines are shared and noisy, so a
benchmark takes the median of several repeats and reports a ratio to its baseline.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

RESULTS = Path(__file__).parent / "results"


@dataclasses.dataclass(frozen=True)
class Figure:
    """One measured figure beside its baseline.

    `better` says which direction is good, so `met` can be judged from `target`:
    with "lower", met is ratio <= target (or value <= target when there is no baseline);
    with "higher", met is ratio >= target.
    `target_on` says whether the target applies to the ratio or to the value itself.
    """

    metric: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    target: float | None = None
    better: Literal["lower", "higher"] = "lower"
    target_on: Literal["ratio", "value"] = "ratio"
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.value / self.baseline

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        subject = self.ratio if self.target_on == "ratio" else self.value
        if subject is None:
            return None
        return subject <= self.target if self.better == "lower" else subject >= self.target

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "value": round(self.value, 6),
            "unit": self.unit,
            "baseline": None if self.baseline is None else round(self.baseline, 6),
            "baseline_name": self.baseline_name,
            "ratio": None if self.ratio is None else round(self.ratio, 4),
            "target": self.target,
            "target_on": self.target_on,
            "better": self.better,
            "met": self.met,
            "note": self.note,
        }


def median_of(fn: Callable[[], float], repeats: int = 5, warmup: int = 1) -> float:
    """Median of `repeats` calls of `fn` (each returns a measurement), after `warmup` calls."""
    for _ in range(warmup):
        fn()
    return statistics.median(fn() for _ in range(repeats))


def timed(fn: Callable[[], Any]) -> float:
    """Seconds one call of `fn` takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        info["memory_gib"] = round(pages / 2**30, 1)
    except (ValueError, OSError):
        pass
    for dist in ("pyspark", "delta-spark", "paho-mqtt", "ddsketch", "fastapi"):
        try:
            from importlib.metadata import version

            info[dist] = version(dist)
        except Exception:
            continue
    return info


def write_results(name: str, figures: list[Figure], seconds: float) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": name,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "seconds": round(seconds, 1),
        "machine": machine(),
        "figures": [f.as_dict() for f in figures],
    }
    out = RESULTS / f"{name}.json"
    out.write_text(json.dumps(payload, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(markdown_table(name, payload))
    return out


def markdown_table(name: str, payload: dict[str, Any]) -> str:
    lines = [
        f"### {name}",
        "",
        f"{payload['date']}, {payload['machine'].get('cores')} cores",
        "",
        "| metric | value | unit | baseline | ratio | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in payload["figures"]:
        base = "" if f["baseline"] is None else f"{f['baseline']:g} ({f['baseline_name']})"
        ratio = "" if f["ratio"] is None else f"{f['ratio']:.3g}"
        target = ""
        if f["target"] is not None:
            sign = "<=" if f["better"] == "lower" else ">="
            target = f"{f['target_on']} {sign} {f['target']:g}"
        met = {True: "yes", False: "**no**", None: ""}[f["met"]]
        cells = [f["metric"], f"{f['value']:.4g}", f["unit"], base, ratio, target, met]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
