"""Water billing over a year of 2,000 meters at 15-minute windows (about 70 million window
rows), through the framework and in DuckDB, in one run:

(a) `water_bills` for the 12 months through the warm runner on local Spark (the settings
    of spark-defaults.conf, as `edgebatch run` has them), as declared (its `span` bills
    the year in one iteration) and with one month per iteration, against the same billing rules
    as one DuckDB SQL script over the same rows as Parquet (`bench/_billing_duckdb.py`),
    2 threads; the bills must agree to the cent per customer and month;
(b) the same job on a Spark standalone master with two workers and the warehouse on
    HDFS (`bench/_billing_cluster.py`, a child process), against the same DuckDB time.
    EDGEBATCH_BENCH_BILLING_CLUSTER=0 leaves (b) out.

The year is generated once and cached (`bench/_billing_data.py`); the time it took is
reported beside, from its manifest.

    make bench BENCH=billing
"""

from __future__ import annotations

import dataclasses
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.common import Figure

JOB = "water_bills"
MONTHS = ("2025-01", "2025-12")
# The job's outputs, removed before a timed run so each run writes them afresh.
GOLD_PREFIX = "gold"
Totals = dict[tuple[str, str], Decimal]


def framework_settings(home: Path, root: str):
    from bench._billing_data import REPO
    from edgebatch.settings import (
        FrameworkSettings,
        Settings,
        SparkSettings,
        StateSettings,
        WarehouseSettings,
    )

    home.mkdir(parents=True, exist_ok=True)
    return Settings(
        warehouse=WarehouseSettings(root=root),
        spark=SparkSettings(defaults_file=str(REPO / "spark-defaults.conf")),
        state=StateSettings(url=f"sqlite:///{home / 'state.db'}"),
        framework=FrameworkSettings(),
        home=home,
    )


def make_runner(spark, settings):
    from edgebatch.framework.registry import discover
    from edgebatch.framework.runner import Runner
    from edgebatch.framework.state import StateStore

    return Runner(spark, StateStore(settings.state_url), settings, discover(settings))


def bill_totals(spark, root) -> Totals:
    """Each bill's total (the sum of its lines' amounts) by month and customer."""
    from pyspark.sql import functions as F

    from edgebatch.framework.reports.bills import WATER_BILLS
    from edgebatch.warehouse.tables import read_table

    rows = (
        read_table(spark, root, WATER_BILLS)
        .groupBy("month", "customer")
        .agg(F.sum("amount").alias("total"))
        .collect()
    )
    return {(str(r["month"])[:7], r["customer"]): Decimal(r["total"]) for r in rows}


def gold_rows(spark, root) -> dict[str, list[tuple]]:
    """Every row of the job's gold tables, to compare a spanning run with monthly ones."""
    from edgebatch.warehouse.tables import REGISTRY, read_table

    return {
        name: [tuple(r) for r in read_table(spark, root, REGISTRY.get(name)).collect()]
        for name in ("gold/water_bills", "gold/water_demand")
    }


def cpu_seconds(pid: int | None = None) -> float:
    """CPU time (user + system) of this process, or of process `pid` (the Spark JVM).

    Reported beside wall time: on a shared machine the wall time of either side swings
    with the others' load, the CPU each side spent much less.
    """
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def jvm_pid(spark) -> int:
    return int(spark._jvm.java.lang.ProcessHandle.current().pid())


def iteration_times(runner, run_id: int) -> str:
    """Each month's time, rows read and tasks, as one line (where the time went)."""
    parts = []
    for it in runner.store.list_iterations(run_id):
        took = (it.ended_at - it.started_at).total_seconds() if it.started_at and it.ended_at else 0
        parts.append(f"{it.partition_key} {took:.1f}s/{it.rows_in or 0:,}r/{it.tasks_total}t")
    return "; ".join(parts)


def scan_plan(spark, root, month: str = "2025-06-01") -> str:
    """The physical plan of the job's grouping of one month's windows (partition pruning,
    the integer keys it groups by): what `ctx.aggregate` runs before it names and gates
    the groups (`framework/name_keys.py`)."""
    from pyspark.sql import functions as F

    from edgebatch.warehouse.tables import REGISTRY, read_table

    df = (
        read_table(spark, root, REGISTRY.get("silver/readings"))
        .where(f"date >= DATE'{month}' AND date < add_months(DATE'{month}', 1)")
        .where("kind = 'water_meter' AND metric = 'flow'")
        .groupBy("date", "device_key", "subject_key")
        .agg(F.sum("window_seconds"))
    )
    return df._jdf.queryExecution().executedPlan().toString()


def compare(ours: Totals, theirs: Totals) -> tuple[int, list[str]]:
    """Bills that differ (missing on either side counts), and a few of them to show."""
    keys = sorted(set(ours) | set(theirs))
    bad = [k for k in keys if ours.get(k) != theirs.get(k)]
    shown = [f"{m} {c}: ours {ours.get((m, c))} duckdb {theirs.get((m, c))}" for m, c in bad[:5]]
    return len(bad), shown


def _cluster(warehouse: Path) -> dict[str, Any]:
    import json

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cluster.json"
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "bench._billing_cluster", str(warehouse), str(out)],
            cwd=Path(__file__).resolve().parents[1],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0 or not out.exists():
            tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
            raise RuntimeError(f"cluster run failed (exit {proc.returncode}):\n{tail}")
        result = json.loads(out.read_text())
        result["wall_s"] = time.perf_counter() - started
        return result


def run() -> list[Figure]:
    from bench import _billing_data as data
    from bench import _billing_duckdb as duck
    from edgebatch.framework.requests import RunRequest
    from edgebatch.framework.session import build_session

    home = Path(tempfile.mkdtemp(prefix="edgebatch-billbench-"))
    warehouse = data.folder() / "warehouse"
    settings = framework_settings(home, warehouse.as_uri())
    spark = build_session(settings)
    spark.sparkContext.setLogLevel("ERROR")
    runner = make_runner(spark, settings)

    def load_reference(folder: Path) -> None:
        run = runner.run(RunRequest("reference_load", params={"source": str(folder)}))
        if run.state != "succeeded":
            raise RuntimeError(f"reference_load failed: {run.error}")

    built = data.manifest() is None
    manifest = data.ensure_year(spark)
    load_reference(data.folder() / "reference")
    print(f"   year: {manifest['rows']:,} rows; built {manifest['built']}", flush=True)

    # DuckDB first, then ours, once each (no warm-up loop: the machine is shared).
    t, cpu = time.perf_counter(), cpu_seconds()
    theirs = duck.bill_totals(data.folder())
    duck_s, duck_cpu = time.perf_counter() - t, cpu_seconds() - cpu
    print(f"   duckdb: {duck_s:.1f} s ({duck_cpu:.1f} s CPU), {len(theirs)} bills", flush=True)

    jvm = jvm_pid(spark)

    def timed_year() -> tuple[float, float, Any]:
        from edgebatch.warehouse.tables import forget_known_tables

        shutil.rmtree(warehouse / GOLD_PREFIX, ignore_errors=True)
        forget_known_tables()
        t, cpu, jvm_cpu = time.perf_counter(), cpu_seconds(), cpu_seconds(jvm)
        run = runner.run(RunRequest(JOB, start=MONTHS[0], end=MONTHS[1], rerun=True))
        took = time.perf_counter() - t
        used = cpu_seconds() - cpu + cpu_seconds(jvm) - jvm_cpu
        if run.state != "succeeded":
            raise RuntimeError(f"{JOB} failed: {run.error}")
        print(f"   iterations: {iteration_times(runner, run.id)}", flush=True)
        return took, used, run

    # The job as declared (a year's months share iterations: `span`), then the same
    # months one iteration each (span 1), to show what the per-iteration cost is.
    declared = runner.registry.get(JOB)
    monthly_s, monthly_cpu, monthly_gold = 0.0, 0.0, {}
    if declared.span > 1:
        runner.registry.add(dataclasses.replace(declared, span=1))
        monthly_s, monthly_cpu, _ = timed_year()
        monthly_gold = gold_rows(spark, runner.root)
        print(f"   framework, one month per iteration: {monthly_s:.1f} s", flush=True)
        runner.registry.add(declared)
    ours_s, ours_cpu, run = timed_year()
    # A span bills the months of a year in one go: the gold tables must be the same rows.
    span_gold = gold_rows(spark, runner.root) if monthly_gold else {}
    span_differs = sum(len(set(rows) ^ set(span_gold[n])) for n, rows in monthly_gold.items())
    print(f"   framework: {ours_s:.1f} s ({ours_cpu:.1f} s CPU)", flush=True)
    print("   plan of one month's read:\n" + scan_plan(spark, runner.root), flush=True)
    ours = bill_totals(spark, runner.root)
    mismatched, shown = compare(ours, theirs)
    for line in shown:
        print(f"   mismatch: {line}")
    runner.close()
    spark.stop()

    gen = manifest["seconds"]
    figures = [
        Figure(
            "billing_year_framework_local",
            ours_s,
            "s",
            baseline=duck_s,
            baseline_name="the same rules in DuckDB SQL over the same rows as Parquet, 2 threads",
            target=3.0,
            note=f"{JOB} as declared (span {declared.span}: up to {declared.span} months per "
            f"iteration), warm runner, local Spark (spark-defaults.conf); "
            f"{manifest['rows']:,} windows, {manifest['meters']} meters",
        ),
        Figure(
            "billing_year_framework_local_cpu",
            ours_cpu,
            "CPU s",
            baseline=duck_cpu,
            baseline_name="DuckDB's CPU time for the same bills",
            note="user + system time of the Spark JVM and the Python driver during the run, "
            "against DuckDB's (in this process): steadier than wall time on a shared machine",
        ),
        *(
            [
                Figure(
                    "billing_year_framework_one_month_per_iteration",
                    monthly_s,
                    "s",
                    baseline=duck_s,
                    baseline_name="DuckDB, same run",
                    note=f"the same job with span 1: 12 iterations, one at a time (in_order); "
                    f"{monthly_cpu:.0f} CPU s",
                )
            ]
            if monthly_s
            else []
        ),
        Figure(
            "gold_rows_differing_span_vs_monthly",
            span_differs,
            "rows",
            target=0,
            target_on="value",
            note="gold/water_bills and gold/water_demand after the spanning run against "
            "after the 12 monthly iterations (symmetric difference)",
        ),
        Figure(
            "bills_differing_from_duckdb",
            mismatched,
            "bills",
            target=0,
            target_on="value",
            note=f"of {len(theirs)} bills (customer and month), totals compared to the cent",
        ),
        Figure(
            "year_generation",
            sum(gen.values()),
            "s",
            note=("built in this run: " if built else f"cached, built {manifest['built']}: ")
            + ", ".join(f"{k} {v}" for k, v in gen.items()),
        ),
    ]
    if os.environ.get("EDGEBATCH_BENCH_BILLING_CLUSTER", "1") != "0":
        cluster = _cluster(warehouse)
        if cluster.get("state") != "succeeded":
            raise RuntimeError(f"{JOB} on the cluster: {cluster.get('state')}: {cluster['error']}")
        remote: Totals = {}
        for key, value in cluster["totals"].items():
            month, customer = key.split("|", 1)
            remote[(month, customer)] = Decimal(value)
        bad, _ = compare(remote, theirs)
        figures.append(
            Figure(
                "billing_year_standalone_hdfs",
                cluster["job_s"],
                "s",
                baseline=duck_s,
                baseline_name="DuckDB, same run (local Parquet)",
                note=f"master + 2 workers x 1 core, warehouse on HDFS; {bad} bills differ; "
                f"services up in {cluster['services_start_s']:.0f} s, "
                f"upload {cluster['hdfs_upload_s']:.0f} s",
            )
        )
    shutil.rmtree(home, ignore_errors=True)
    return figures
