"""Bottling OEE over landed line sensors: every figure of `gold/oee_batches` equals a
plain-Python computation over the same landing files and reference CSVs (revisions
merged, a duplicate landing dropped, windows prorated at batch edges, gaps counted as
stopped, the trend across months); a line without consent gets no row; rerunning the
month changes nothing."""

from __future__ import annotations

import datetime as dt
import math
import random
from collections import defaultdict
from typing import Any

import pytest

from tests.support.landed import (
    Landing,
    Warehouse,
    consented_subjects,
    csv_rows,
    lands,
    ts,
    utc,
)

pytestmark = [pytest.mark.integration]

TENANT = "demo-bottling"
UTC = dt.UTC
# line-1 has six batches (one in October with no window at all, for the trend across
# months; edges off the 10-minute windows; one across midnight), line-2 two, line-3 one
# but no consent.
BATCHES_CSV = """tenant,line,batch,product,planned_start,planned_end,ideal_rate
demo-bottling,line-1,A0,still-500,2026-10-31T20:00:00Z,2026-10-31T23:00:00Z,320
demo-bottling,line-1,A1,still-500,2026-11-01T06:00:00Z,2026-11-01T08:00:00Z,320
demo-bottling,line-1,A2,sparkling-500,2026-11-01T08:00:00Z,2026-11-01T10:05:00Z,320
demo-bottling,line-1,A3,sparkling-500,2026-11-01T10:05:00Z,2026-11-01T12:00:00Z,300
demo-bottling,line-1,A4,still-1000,2026-11-01T22:00:00Z,2026-11-02T01:00:00Z,320
demo-bottling,line-1,A5,still-1000,2026-11-02T02:00:00Z,2026-11-02T04:00:00Z,320
demo-bottling,line-2,B1,still-500,2026-11-01T08:00:00Z,2026-11-01T11:00:00Z,310
demo-bottling,line-2,B2,,2026-11-02T09:00:00Z,2026-11-02T10:00:00Z,310
demo-bottling,line-3,C1,still-500,2026-11-01T08:00:00Z,2026-11-01T10:00:00Z,300
"""
# (line, first window start, last window start); 10-minute windows
SPANS = [
    ("line-1", "2026-11-01T05:40:00Z", "2026-11-01T12:10:00Z"),
    ("line-1", "2026-11-01T21:40:00Z", "2026-11-02T04:10:00Z"),
    ("line-2", "2026-11-01T07:40:00Z", "2026-11-01T11:10:00Z"),
    ("line-2", "2026-11-02T08:40:00Z", "2026-11-02T10:10:00Z"),
    ("line-3", "2026-11-01T07:40:00Z", "2026-11-01T10:10:00Z"),
]
GAP = (ts("2026-11-01T07:00:00Z"), ts("2026-11-01T07:30:00Z"))  # line-1 sent nothing
WINDOW_MIN = 10
WINDOW = dt.timedelta(minutes=WINDOW_MIN)


@lands("oee", **{"batches.csv": BATCHES_CSV})
def _landing() -> Landing:
    """One batch per window with bottles, rejects and fill volume; some windows stopped
    or slow; late revisions; one message landed twice."""
    rng = random.Random(18)
    landing = Landing()
    out = []
    for line, first, last in SPANS:
        start = ts(first)
        while start <= ts(last):
            if not (GAP[0] <= start < GAP[1] and line == "line-1"):
                state = rng.choices(("run", "slow", "stop"), (6, 2, 1))[0]
                rate = {"run": 300.0, "slow": 120.0, "stop": 2.0}[state]
                metrics = {
                    "bottles": ("bottles/min", [max(0.0, rng.gauss(rate, 10)) for _ in range(10)]),
                    "rejects": ("bottles/min", [max(0.0, rng.gauss(3, 1.5)) for _ in range(10)]),
                    "fill_volume": ("ml", [rng.gauss(500.5, 1.2) for _ in range(10)]),
                }
                out.append(landing.window(TENANT, line, start, WINDOW_MIN, metrics))
                if rng.random() < 0.1:  # readings that arrived after the window closed
                    late = [max(0.0, rng.gauss(rate, 10)) for _ in range(3)]
                    landing.window(
                        TENANT, line, start, WINDOW_MIN, {"bottles": ("bottles/min", late)}, 1
                    )
            start += WINDOW
    landing.add([out[5]])  # the same message landed twice: one row in bronze
    return landing


def expected(w: Warehouse) -> dict[str, dict[str, Any]]:
    """The figures from the landing files and the CSVs alone, in plain Python."""
    folder = w.reference
    parts: dict[tuple, dict[str, float]] = defaultdict(lambda: {"count": 0, "sum": 0.0})
    seen = set()
    for msg in w.payloads("batch"):
        if msg["batch_id"] in seen:
            continue
        seen.add(msg["batch_id"])
        for m in msg["metrics"]:
            key = (
                msg["tenant"],
                msg["device"],
                m["name"],
                ts(msg["window_start"]),
                ts(msg["window_end"]),
            )
            parts[key]["count"] += m["count"]
            parts[key]["sum"] += m["sum"]
    registry = {
        (r["tenant"], r["device"]): r
        for r in csv_rows(folder / "devices.csv")
        if r["kind"] == "bottling_line"
    }
    allowed = consented_subjects(folder)
    batches: list[dict[str, Any]] = []
    for b in csv_rows(folder / "batches.csv"):
        reg = registry.get((b["tenant"], b["line"]))
        if reg is None or (b["tenant"], reg["subject"]) not in allowed:
            continue
        start, end, ideal = ts(b["planned_start"]), ts(b["planned_end"]), float(b["ideal_rate"])
        planned = (end - start).total_seconds() / 60
        running = bottles = rejects = 0.0
        windows = 0
        for (tenant, device, metric, ws, we), agg in parts.items():
            if (tenant, device) != (b["tenant"], b["line"]) or not (ws < end and we > start):
                continue
            minutes = (min(we, end) - max(ws, start)).total_seconds() / 60
            mean = agg["sum"] / agg["count"]
            if metric == "bottles":
                windows += 1
                bottles += mean * minutes
                if mean > 0.1 * ideal:
                    running += minutes
            elif metric == "rejects":
                rejects += mean * minutes
        good = bottles - rejects
        batches.append({
            "tenant": b["tenant"], "line": b["line"], "batch": b["batch"],
            "product": b["product"] or None, "subject": reg["subject"], "site": reg["site"],
            "planned_start": start, "planned_end": end, "ideal_rate": ideal,
            "planned_minutes": planned, "running_minutes": running, "windows": windows,
            "bottles": bottles, "rejects": rejects, "good": good,
            "availability": running / planned,
            "performance": bottles / (ideal * running) if running else None,
            "quality": good / bottles if bottles else None,
            "oee": good / (ideal * planned),
            "month": start.date().replace(day=1),
        })  # fmt: skip
    by_line = defaultdict(list)
    for row in sorted(batches, key=lambda r: (r["planned_start"], r["batch"])):
        by_line[(row["tenant"], row["line"])].append(row)
    for rows in by_line.values():
        for i, row in enumerate(rows):
            prev = rows[i - 1] if i else None
            last = [r["oee"] for r in rows[max(0, i - 4) : i + 1]]
            row["previous_batch"] = prev and prev["batch"]
            row["previous_oee"] = prev and prev["oee"]
            row["oee_change"] = prev and row["oee"] - prev["oee"]
            row["rolling_oee"] = sum(last) / len(last)
            row["rolling_batches"] = len(last)
    return {r["batch"]: r for r in batches}


@pytest.fixture(scope="module")
def plant(gold_warehouse: Warehouse) -> Warehouse:
    """The session's warehouse (line sensors landed, the reference data with the batches,
    bronze and silver loaded), and one OEE run for November."""
    gold_warehouse.run("oee", partitions=("2026-11",))
    return gold_warehouse


def test_every_oee_figure_equals_the_plain_python_one_over_the_landing_files(plant):
    want = expected(plant)
    got = {r["batch"]: r for r in plant.rows("gold/oee_batches")}

    # A0 started in October (only the trend sees it); C1's line has no consent.
    assert sorted(got) == ["A1", "A2", "A3", "A4", "A5", "B1", "B2"]
    assert "C1" not in want and got["A1"]["previous_batch"] == "A0"
    assert want["A0"]["oee"] == 0 and want["A0"]["windows"] == 0
    assert want["A5"]["rolling_batches"] == 5  # the rolling mean's length is reached
    assert want["A1"]["running_minutes"] <= want["A1"]["planned_minutes"] - 30  # the gap
    for batch, row in got.items():
        exp = want[batch]
        for column, value in row.items():
            value, wanted = utc(value), exp[column]
            if isinstance(wanted, float) and value is not None:
                assert math.isclose(value, wanted, rel_tol=1e-9, abs_tol=1e-9), (batch, column)
            else:
                assert value == wanted, (batch, column, value, wanted)
        if row["performance"] is not None and row["quality"] is not None:
            product = row["availability"] * row["performance"] * row["quality"]
            assert math.isclose(row["oee"], product, rel_tol=1e-9)


def test_rerunning_the_month_changes_no_row(plant):
    before = plant.table_rows("gold/oee_batches")

    plant.run("oee", partitions=("2026-11",), rerun=True)

    assert plant.table_rows("gold/oee_batches") == before


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("t,l,b,p,2026-11-01T06:00:00Z,2026-11-01T08:00:00Z,0", "column 'ideal_rate'"),
        ("t,l,b,p,2026-11-01T06:00:00,2026-11-01T08:00:00Z,300", "has no time zone"),
        ("t,l,b,p,2026-11-01T08:00:00Z,2026-11-01T06:00:00Z,300", "on or before it starts"),
    ],
)
def test_a_bad_batches_csv_is_refused_naming_what_is_wrong(tmp_path, line, message):
    from edgebatch.jobs.reference_load import FILES, ReferenceDataError, _check_validity, read_csv

    spec, parsers = FILES["batches.csv"]
    path = tmp_path / "batches.csv"
    path.write_text(BATCHES_CSV.splitlines()[0] + "\n" + line + "\n")
    with pytest.raises(ReferenceDataError, match=message):
        rows = read_csv(path, parsers, spec.keys)
        _check_validity(path, rows, 4, 5)
