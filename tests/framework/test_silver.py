"""Silver: revisions merged and duplicates gone, the figures equal to a plain-Python
computation over the same bronze rows, the consent gate withholding and erasing, reruns
changing nothing, and the reference data reloading idempotently per tenant."""

from __future__ import annotations

import datetime as dt
import math
import random
import shutil
import statistics
from collections import defaultdict
from pathlib import Path

import pytest

from edgebatch.framework.requests import RunRequest
from edgebatch.framework.state import RunState
from edgebatch.warehouse.catalog import EDGE_BATCHES
from edgebatch.warehouse.tables import REGISTRY, append, merge_new_rows, read_table

DAY = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)  # Spark hands back naive local times
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "reference"

DEVICES_CSV = """tenant,device,site,kind,subject_type,subject,tariff_class,installed_on,removed_on
t1,d1,north,water_meter,customer,c1,residential,2026-01-01,
t1,d2,north,water_meter,customer,c2,residential,2026-01-01,
t1,d4,south,water_meter,customer,c4,commercial,2026-01-01,
t1,d5,south,water_meter,customer,c5,commercial,2026-01-01,2026-11-02
t2,d1,east,patient_monitor,patient,p1,,2026-10-01,
"""
CONSENT_CSV = """tenant,subject,status,at,source
t1,c1,granted,2026-01-01T00:00:00Z,contract
t1,c4,granted,2026-01-01T00:00:00Z,contract
t1,c4,withdrawn,2026-10-15T12:00:00Z,portal
t1,c5,granted,2026-01-01T00:00:00Z,contract
t2,p1,granted,2026-10-01T08:00:00Z,form
"""
# d1 of t1 and d1 of t2 are in; d2 never consented; d3 is not registered; d4 withdrew;
# d5 was removed the day before.
EXPECTED_WITHHELD = {
    ("t1", "d2"): "no_consent",
    ("t1", "d3"): "unregistered",
    ("t1", "d4"): "withdrawn",
    ("t1", "d5"): "unregistered",
}


def _reference(folder: Path, consent: str = CONSENT_CSV) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "devices.csv").write_text(DEVICES_CSV)
    (folder / "consent.csv").write_text(consent)
    shutil.copy(EXAMPLES / "tariffs.csv", folder / "tariffs.csv")
    return folder


def _part(tenant, device, metric, start, revision, values, batch_id=None) -> dict:
    mean = statistics.fmean(values)
    return {
        "batch_id": batch_id or f"{tenant}-{device}-{start:%H%M}-{revision}",
        "metric": metric,
        "tenant": tenant,
        "device": device,
        "window_start": start,
        "window_end": start + dt.timedelta(minutes=15),
        "revision": revision,
        "unit": "l/min",
        "count": len(values),
        "sum": math.fsum(values),
        "min": min(values),
        "max": max(values),
        "mean": mean,
        "m2": math.fsum((v - mean) ** 2 for v in values),
        "sketch": f"sk-{revision}",
        "first_ts": start,
        "last_ts": start + dt.timedelta(minutes=14),
        "received_at": start + dt.timedelta(minutes=20 + revision),
        "date": start.date(),
    }


def _bronze(seed: int = 7):
    """Bronze rows of one day, and the raw readings behind each window."""
    rng = random.Random(seed)
    rows, readings = [], defaultdict(list)
    for tenant, device in [("t1", d) for d in ("d1", "d2", "d3", "d4", "d5")] + [("t2", "d1")]:
        for metric in ("flow", "pressure"):
            for slot in range(0, 96, 16):
                start = DAY + dt.timedelta(minutes=15 * slot)
                for revision in range(rng.choice((1, 1, 2, 3))):
                    values = [rng.gauss(40 + slot, 6) for _ in range(rng.randint(1, 30))]
                    rows.append(_part(tenant, device, metric, start, revision, values))
                    readings[(tenant, device, metric, start)].append((revision, values))
    return rows, readings


@pytest.fixture
def loaded(runner, tmp_path):
    """Bronze for one day (with a batch landed twice), reference data, one silver run."""
    spark = runner.spark
    rows, readings = _bronze()
    merge_new_rows(
        spark, runner.root, EDGE_BATCHES, spark.createDataFrame(rows, EDGE_BATCHES.struct())
    )
    # the same batch landed twice (bronze's MERGE would refuse it; a stray append does not)
    append(spark, runner.root, EDGE_BATCHES, spark.createDataFrame(rows[:1], EDGE_BATCHES.struct()))
    source = _reference(tmp_path / "reference")
    ref = runner.run(RunRequest("reference_load", params={"source": str(source)}))
    assert ref.state == RunState.SUCCEEDED, ref.error
    run = runner.run(RunRequest("silver_readings", partitions=(DAY.date().isoformat(),)))
    assert run.state == RunState.SUCCEEDED, run.error
    return readings, source, run


def _silver(runner, name="silver/readings"):
    return read_table(runner.spark, runner.root, REGISTRY.get(name))


def _log(runner, run) -> str:
    return "\n".join(line.message for line in runner.store.read_logs(run.id))


def test_silver_equals_plain_python_over_the_same_bronze_rows_and_a_rerun_changes_nothing(
    runner, loaded
):
    readings, _, run = loaded
    got = {
        (r.tenant, r.device, r.metric, r.window_start.astimezone(dt.UTC)): r
        for r in _silver(runner).collect()
    }
    expected = {k: v for k, v in readings.items() if (k[0], k[1]) not in EXPECTED_WITHHELD}

    assert set(got) == set(expected)
    for key, parts in expected.items():
        values = [v for _, vs in parts for v in vs]
        r = got[key]
        assert (r["count"], r.revisions, r.last_revision) == (
            len(values),
            len(parts),
            len(parts) - 1,
        )
        assert math.isclose(r["sum"], math.fsum(values), rel_tol=1e-12)
        assert (r.min, r.max) == (min(values), max(values))
        assert math.isclose(r.mean, statistics.fmean(values), rel_tol=1e-12)
        if len(values) > 1:
            assert math.isclose(r.stddev, statistics.stdev(values), rel_tol=1e-9)
        assert r.sketches == [f"sk-{rev}" for rev, _ in parts]
    first = got[("t1", "d1", "flow", DAY)]
    assert (first.subject, first.kind, first.site, first.tariff_class) == (
        "c1", "water_meter", "north", "residential",
    )  # fmt: skip
    assert got[("t2", "d1", "flow", DAY)].subject == "p1"
    # the derived columns: each window's length, its device's and subject's keys (Spark's
    # xxhash64 of tenant and name), and the dictionary of keys and names
    derived = "window_seconds = 900 AND device_key = xxhash64(tenant, device) AND "
    derived += "subject_key = xxhash64(tenant, subject)"
    assert _silver(runner).where(derived).count() == len(got)
    names = {tuple(r) for r in _silver(runner, "silver/reading_keys").collect()}
    assert names == {
        (r.tenant, r.device, r.subject, r.device_key, r.subject_key) for r in got.values()
    }

    withheld = {(r.tenant, r.device): r for r in _silver(runner, "silver/withheld").collect()}
    assert {k: r.reason for k, r in withheld.items()} == EXPECTED_WITHHELD
    for (tenant, device), r in withheld.items():
        mine = [p for k, p in readings.items() if k[:2] == (tenant, device)]
        assert r.windows == len(mine)
        assert r.readings == sum(len(vs) for parts in mine for _, vs in parts)
    log = _log(runner, run)
    total = sum(r.windows for r in withheld.values())
    assert f"consent gate: withheld {total} windows" in log
    assert "one_registry_row_per_window (quarantine): 0 failing" in log

    before = sorted(map(tuple, _silver(runner).collect()))
    held = sorted(map(tuple, _silver(runner, "silver/withheld").collect()))
    again = runner.run(
        RunRequest("silver_readings", partitions=(DAY.date().isoformat(),), rerun=True)
    )

    assert again.state == RunState.SUCCEEDED, again.error
    assert sorted(map(tuple, _silver(runner).collect())) == before
    assert sorted(map(tuple, _silver(runner, "silver/withheld").collect())) == held
    assert {tuple(r) for r in _silver(runner, "silver/reading_keys").collect()} == names

    # a late revision lands: an incremental run takes its day (and today's), nothing else
    key = ("t1", "d1", "flow", DAY)
    late = _part(*key, revision=len(readings[key]), values=[1000.0])
    merge_new_rows(
        runner.spark, runner.root, EDGE_BATCHES,
        runner.spark.createDataFrame([late], EDGE_BATCHES.struct()),
    )  # fmt: skip
    incremental = runner.run(RunRequest("silver_readings"))
    assert incremental.state == RunState.SUCCEEDED, incremental.error
    today = dt.datetime.now(dt.UTC).date().isoformat()
    assert set(incremental.partitions) == {DAY.date().isoformat(), today}
    (window,) = [
        r
        for r in _silver(runner)
        .where("tenant = 't1' AND device = 'd1' AND metric = 'flow'")
        .collect()
        if r.window_start.astimezone(dt.UTC) == DAY
    ]
    assert (window.revisions, window.max) == (len(readings[key]) + 1, 1000.0)


def test_a_withdrawal_hides_the_subject_at_once_and_the_erase_deletes_it_everywhere(
    runner, loaded, caplog
):
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    from edgebatch.framework.consent import (
        aggregate_gated,
        aggregate_gated_to_arrow,
        read_gated,
    )

    _, source, _ = loaded
    gold = runner.run(RunRequest("subject_totals"))
    assert gold.state == RunState.SUCCEEDED, gold.error
    totals = _silver(runner, "gold/test_subject_totals")
    assert {r.customer for r in totals.collect()} == {"c1", "p1"}
    (source / "consent.csv").write_text(
        CONSENT_CSV + "t1,c1,withdrawn,2026-11-20T10:00:00Z,portal\n"
    )
    assert (
        runner.run(RunRequest("reference_load", params={"source": str(source)})).state
        == "succeeded"
    )

    gated = read_gated(runner.spark, runner.root, "silver/readings")
    assert {r.subject for r in gated.select("subject").distinct().collect()} == {"p1"}
    # gating the groups (subject among the keys) leaves what grouping the gated rows does
    sums = (F.count(F.lit(1)).alias("windows"), F.sum("count").alias("readings"))
    with caplog.at_level("WARNING", logger="edgebatch.framework.name_keys"):
        groups = aggregate_gated(
            runner.spark, runner.root, "silver/readings", ("tenant", "device"), sums,
            where=("metric <> 'pressure'", F.col("tenant").isin("t1", "t2")),
        )  # fmt: skip
    assert "grouping by names" not in caplog.text  # grouped by silver's keys
    rows_first = (
        gated.where("metric <> 'pressure'").groupBy("tenant", "device", "subject").agg(*sums)
    )
    columns = ["tenant", "device", "subject", "windows", "readings"]
    assert sorted(map(tuple, groups.select(columns).collect())) == sorted(
        map(tuple, rows_first.select(columns).collect())
    )
    assert {r.subject for r in groups.collect()} == {"p1"}
    in_driver = aggregate_gated_to_arrow(
        runner.spark, runner.root, "silver/readings", ("tenant", "device"), sums,
        where=("metric <> 'pressure'", F.col("tenant").isin("t1", "t2")),
    ).select(columns)  # fmt: skip
    assert sorted(zip(*in_driver.to_pydict().values(), strict=True)) == sorted(
        map(tuple, rows_first.select(columns).collect())
    )
    # and the gate joins the groups: Spark did not push it back under the aggregate
    assert "LogicalRDD" in groups._jdf.queryExecution().optimizedPlan().toString()
    assert _silver(runner).where("subject = 'c1'").count() > 0  # still stored, until the erase

    erase = runner.run(RunRequest("consent_erase"))

    assert erase.state == RunState.SUCCEEDED, erase.error
    assert _silver(runner).where("subject = 'c1'").count() == 0
    assert _silver(runner, "silver/reading_keys").where("subject = 'c1'").count() == 0
    assert {r.customer for r in _silver(runner, "gold/test_subject_totals").collect()} == {"p1"}
    history = DeltaTable.forPath(
        runner.spark, REGISTRY.get("silver/readings").location(runner.root)
    ).history(1)
    assert history.collect()[0].operation == "DELETE"
    assert "silver/readings: " in _log(runner, erase)
    # the DELETE keeps the table open to delta-rs readers (no deletion vectors)
    import deltalake

    location = REGISTRY.get("silver/readings").location(runner.root)
    assert deltalake.DeltaTable(location).to_pyarrow_table().num_rows == _silver(runner).count()


def test_reference_reload_commits_nothing_when_unchanged_and_touches_only_its_tenants(
    runner, tmp_path
):
    from delta.tables import DeltaTable

    source = _reference(tmp_path / "ref")

    def versions():
        return {
            name: DeltaTable.forPath(runner.spark, REGISTRY.get(name).location(runner.root))
            .history(1)
            .collect()[0]
            .version
            for name in ("reference/devices", "reference/tariffs", "reference/consent")
        }

    def rows(name):
        return sorted(map(tuple, _silver(runner, name).collect()))

    assert (
        runner.run(RunRequest("reference_load", params={"source": str(source)})).state
        == "succeeded"
    )
    first, devices = versions(), rows("reference/devices")
    assert len(devices) == 5 and len(rows("reference/tariffs")) == 8

    again = runner.run(RunRequest("reference_load", params={"source": str(source)}, rerun=True))

    assert again.state == RunState.SUCCEEDED, again.error
    assert versions() == first and rows("reference/devices") == devices
    # a folder with tenant t2 only replaces t2's rows and leaves t1's alone
    only_t2 = tmp_path / "t2"
    only_t2.mkdir()
    (only_t2 / "devices.csv").write_text(
        DEVICES_CSV.splitlines()[0] + "\nt2,d9,west,patient_monitor,patient,p9,,2026-10-01,\n"
    )
    assert (
        runner.run(RunRequest("reference_load", params={"source": str(only_t2)}, rerun=True)).state
        == "succeeded"
    )
    after = rows("reference/devices")
    assert [r for r in after if r[0] == "t1"] == [r for r in devices if r[0] == "t1"]
    assert [r[1] for r in after if r[0] == "t2"] == ["d9"]


def test_a_bad_reference_file_is_refused_naming_file_line_and_column(tmp_path):
    from edgebatch.jobs.reference_load import FILES, ReferenceDataError, read_csv

    spec, parsers = FILES["consent.csv"]
    path = tmp_path / "consent.csv"
    path.write_text(CONSENT_CSV.replace("t1,c4,withdrawn", "t1,c4,revoked"))
    with pytest.raises(ReferenceDataError, match=r"consent.csv, line 4, column 'status'.*revoked"):
        read_csv(path, parsers, spec.keys)
    path.write_text(CONSENT_CSV + "t1,c1,granted,2026-01-01T00:00:00Z,again\n")
    with pytest.raises(ReferenceDataError, match=r"line 7: .*'subject': 'c1'.* repeats line 2"):
        read_csv(path, parsers, spec.keys)
    path.write_text("tenant,subject,status,when\n")
    with pytest.raises(ReferenceDataError, match="missing at, source; unknown when"):
        read_csv(path, parsers, spec.keys)
