"""The first silver job: a day's statistics from windows equal the exact statistics of
all the day's readings (count, sum, min, max, mean, stddev), revisions included; a
device without consent or registration never reaches it."""

from __future__ import annotations

import datetime as dt
import math
import random
import statistics

from edgebatch.framework.requests import RunRequest
from edgebatch.framework.state import RunState
from edgebatch.warehouse.catalog import EDGE_BATCHES
from edgebatch.warehouse.tables import REGISTRY, merge_new_rows, read_table
from tests.support.consent import grant

# m1 and m2 are registered to c1 and c2, who consented; m3's c3 never did; m4 is unregistered.
REGISTERED = {"m1": "c1", "m2": "c2", "m3": "c3"}


def _register(runner, consented=("c1", "c2")) -> None:
    from edgebatch.warehouse.reference import DEVICES
    from edgebatch.warehouse.tables import ensure_table

    spark = runner.spark
    ensure_table(spark, runner.root, DEVICES)
    rows = [
        (
            "acme",
            device,
            "north",
            "water_meter",
            "customer",
            subject,
            None,
            dt.date(2026, 1, 1),
            None,
        )
        for device, subject in REGISTERED.items()
    ]
    spark.createDataFrame(rows, DEVICES.struct()).write.format("delta").mode("append").save(
        DEVICES.location(runner.root)
    )
    grant(spark, runner.root, "acme", consented)


def _window_row(device: str, start: dt.datetime, revision: int, values: list[float]) -> dict:
    mean = statistics.fmean(values)
    return {
        "batch_id": f"{device}-{start:%H%M}-{revision}",
        "metric": "flow",
        "tenant": "acme",
        "device": device,
        "window_start": start,
        "window_end": start + dt.timedelta(hours=1),
        "revision": revision,
        "unit": "l/min",
        "count": len(values),
        "sum": math.fsum(values),
        "min": min(values),
        "max": max(values),
        "mean": mean,
        "m2": math.fsum((v - mean) ** 2 for v in values),
        "first_ts": start,
        "last_ts": start + dt.timedelta(minutes=59),
        "date": start.date(),
    }


def test_daily_rollup_equals_exact_statistics_of_the_readings(runner):
    rng = random.Random(42)
    day = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)
    readings: dict[str, list[float]] = {}
    rows = []
    for device in ("m1", "m2", "m3", "m4"):
        for hour in range(0, 24, 3):
            start = day + dt.timedelta(hours=hour)
            values = [rng.gauss(50 + hour, 7) for _ in range(rng.randint(5, 40))]
            late = [rng.gauss(50, 30) for _ in range(rng.randint(0, 3))]
            rows.append(_window_row(device, start, 0, values))
            if late:  # a correction carrying readings that arrived after the window closed
                rows.append(_window_row(device, start, 1, late))
            readings.setdefault(device, []).extend(values + late)
    other_day = _window_row("m1", day + dt.timedelta(days=1), 0, [1e6])
    spark = runner.spark
    df = spark.createDataFrame([*rows, other_day], schema=EDGE_BATCHES.struct())
    merge_new_rows(spark, runner.root, EDGE_BATCHES, df)
    _register(runner)

    run = runner.run(RunRequest("device_daily", partitions=("2026-11-02",)))

    assert run.state == RunState.SUCCEEDED, run.error
    got = {
        r.device: r
        for r in read_table(spark, runner.root, REGISTRY.get("silver/device_daily")).collect()
    }
    assert set(got) == {"m1", "m2"}  # m3 has no consent, m4 no registry row
    log = "\n".join(ln.message for ln in runner.store.read_logs(run.id))
    withheld = sum(1 for r in rows if r["device"] in ("m3", "m4"))
    assert f"consent gate: withheld {withheld} bronze rows" in log
    for device in ("m1", "m2"):
        values = readings[device]
        r = got[device]
        assert r["count"] == len(values)  # Row.count is tuple.count
        assert math.isclose(r["sum"], math.fsum(values), rel_tol=1e-12)
        assert (r.min, r.max) == (min(values), max(values))
        assert math.isclose(r.mean, statistics.fmean(values), rel_tol=1e-12)
        assert math.isclose(r.stddev, statistics.stdev(values), rel_tol=1e-9)
        assert (r.date, r.subject) == (day.date(), REGISTERED[device])


def test_an_incremental_run_takes_every_day_with_new_windows_or_late_revisions(runner):
    spark = runner.spark
    days = [dt.datetime(2026, 11, d, tzinfo=dt.UTC) for d in (2, 3)]
    rows = [  # batch ids name device, hour and revision: one hour per day keeps them apart
        _window_row("m1", day + dt.timedelta(hours=1 + i), 0, [1.0, 2.0])
        for i, day in enumerate(days)
    ]
    merge_new_rows(
        spark, runner.root, EDGE_BATCHES, spark.createDataFrame(rows, EDGE_BATCHES.struct())
    )
    _register(runner)
    today = dt.datetime.now(dt.UTC).date().isoformat()

    first = runner.run(RunRequest("device_daily"))

    assert first.state == RunState.SUCCEEDED, first.error
    assert set(first.partitions) == {"2026-11-02", "2026-11-03", today}
    late = _window_row("m1", days[0] + dt.timedelta(hours=1), 1, [30.0])
    merge_new_rows(
        spark, runner.root, EDGE_BATCHES, spark.createDataFrame([late], EDGE_BATCHES.struct())
    )

    second = runner.run(RunRequest("device_daily"))

    assert second.state == RunState.SUCCEEDED, second.error
    assert set(second.partitions) == {"2026-11-02", today}
    log = "\n".join(ln.message for ln in runner.store.read_logs(second.id))
    assert "2026-11-02: run, new input since it was last loaded at" in log
    assert "2026-11-03: skip, already loaded; its input has not changed since" in log
    daily = read_table(spark, runner.root, REGISTRY.get("silver/device_daily"))
    (nov2,) = daily.where("date = DATE'2026-11-02'").collect()
    assert (nov2["count"], nov2.windows, nov2.max) == (3, 2, 30.0)
