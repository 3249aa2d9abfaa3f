"""The database sink: what staging through Spark's JDBC writer and swapping costs beside a
plain bulk load, and whether the throttle holds its rate.

ROWS bill-like rows (one Delta partition) go to a throwaway PostgreSQL on loopback:
- unthrottled through `JdbcSink` (stage over JDBC + swap in one transaction), beside the
  baseline: psycopg's COPY of the same rows into a plain table (the fastest a client gets
  rows into PostgreSQL), in the same run;
- paced with a limit far above what the machine reaches, beside unthrottled: the cost of
  routing the rows through the Python pacer;
- throttled at LIMIT rows/s: the measured rate over the limit (target at most 1).
Medians of REPEATS writes after one warm-up. EDGEBATCH_BENCH_SINK_ROWS shrinks it.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from bench.common import Figure

ROWS = int(os.environ.get("EDGEBATCH_BENCH_SINK_ROWS", "200000"))
LIMIT = 5000.0
REPEATS = 3
SCHEMA = "tenant STRING, month STRING, meter STRING, m3 DECIMAL(12,3), amount DECIMAL(12,2)"


def _median(fn, repeats: int = REPEATS) -> float:
    fn()
    return statistics.median(fn() for _ in range(repeats))


def run() -> list[Figure]:
    import psycopg

    from edgebatch.framework.session import build_session
    from edgebatch.framework.sinks.jdbc import JdbcSink, JdbcTarget
    from edgebatch.settings import Settings
    from tests.support.postgres import postgres_server

    with tempfile.TemporaryDirectory() as tmp, postgres_server() as pg:
        home = Path(tmp)
        spark = build_session(
            Settings(home=home),
            overrides={"spark.ui.enabled": "false", "spark.master": "local[2]"},
        )
        spark.sparkContext.setLogLevel("ERROR")
        rows = [
            ("acme", "2026-11", f"m{i:07d}", Decimal(f"{i % 997}.125"), Decimal(f"{i % 991}.07"))
            for i in range(ROWS)
        ]
        path = str(home / "bills")
        spark.createDataFrame(rows, SCHEMA).write.format("delta").partitionBy(
            "tenant", "month"
        ).save(path)
        df = spark.read.format("delta").load(path)
        database = "bench"
        pg.create_database(database)
        url = f"jdbc:postgresql://127.0.0.1:{pg.port}/{database}"
        part = {"tenant": "acme", "month": "2026-11"}

        def sink(rate: float) -> float:
            target = JdbcTarget(url, pg.user, "", "public.bills", rate, 1000, 2)
            start = time.perf_counter()
            result = JdbcSink(target).write_partition(df, part)
            assert result.inserted == ROWS
            return time.perf_counter() - start

        def copy() -> float:
            with psycopg.connect(
                host="127.0.0.1", port=pg.port, user=pg.user, dbname=database
            ) as conn:
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS copied (tenant text, month text, meter text, "
                    "m3 numeric(12,3), amount numeric(12,2))"
                )
                conn.execute("TRUNCATE copied")
                start = time.perf_counter()
                with conn.cursor().copy("COPY copied FROM STDIN") as cp:
                    for row in rows:
                        cp.write_row(row)
                conn.commit()
                return time.perf_counter() - start

        unthrottled = _median(lambda: sink(0))
        baseline = _median(copy)
        paced_fast = _median(lambda: sink(1e9))
        throttled_rows = min(ROWS, int(LIMIT * 3))
        small = df.limit(throttled_rows)
        target = JdbcTarget(url, pg.user, "", "public.bills_small", LIMIT, 1000, 2)
        result = JdbcSink(target).write_partition(small, part)
        rate = result.rows_per_second
        spark.stop()
    return [
        Figure(
            "sink unthrottled, stage + swap",
            ROWS / unthrottled,
            "rows/s",
            baseline=ROWS / baseline,
            baseline_name="psycopg COPY (rows in Python memory)",
            better="higher",
            note=f"{ROWS} rows, batch 1000, 2 connections",
        ),
        Figure(
            "sink through the pacer (limit out of reach)",
            ROWS / paced_fast,
            "rows/s",
            baseline=ROWS / unthrottled,
            baseline_name="sink unthrottled (rows stay in the JVM)",
            better="higher",
        ),
        Figure(
            f"sink throttled at {LIMIT:g} rows/s",
            rate,
            "rows/s",
            baseline=LIMIT,
            baseline_name="the limit",
            target=1.0,
            better="lower",
            note=f"{result.inserted} rows; rate of the staging write",
        ),
    ]
