"""Gold: patient vitals, per patient, day and ISO week, and each alarm beside its baseline.

From the consented windows of patient monitors in `silver/readings` (the gate), one month
per iteration:

- `gold/vitals_daily`: heart rate, blood pressure and SpO2 per patient and day: mean,
  stddev (variability), min and max, exact from the windows' mergeable state (count,
  sum, mean, M2 pooled with Chan's formula), with `m2` kept so coarser periods stay exact;
- `gold/vitals_weekly`: the same per ISO week (Monday to Sunday); a week belongs to the
  month of its Sunday, so a month's iteration also reads the days of its first week
  that fall in the month before, and a week is complete once its last day is loaded;
- `gold/vitals_alarms`: each alarm a patient's device raised or cleared that month
  (`bronze/edge_alarms`, kept only for devices registered to a patient that day and
  patients whose consent stands), beside the patient's baseline for that metric over
  the 7 days before it (windows wholly inside them): mean, stddev, the alarm value's
  deviation from that mean and its z-score.

A month's rows are replaced as a whole, so a rerun leaves the tables unchanged.

    edgebatch run vitals --from 2026-10 --to 2026-11
    spark-submit --properties-file spark-defaults.conf jobs/vitals.py --partition 2026-11
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING

from edgebatch.framework.consent import gate_device_rows
from edgebatch.framework.entry import main
from edgebatch.framework.expectations import Expectations, in_range, unique
from edgebatch.framework.gold import monthly_gold, monthly_table
from edgebatch.warehouse.catalog import EDGE_ALARMS
from edgebatch.warehouse.reference import CONSENT, DEVICES, read_reference

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

VITAL_METRICS = ("heart_rate", "systolic_bp", "diastolic_bp", "spo2")
MONITOR_KIND = "patient_monitor"
BASELINE_DAYS = 7
# Six days of the month before hold the start of the month's first week; seven hold the
# baseline of an alarm in the month's first minutes.
LOOKBACK_DAYS = max(BASELINE_DAYS, 6)

_STATS = """
    windows BIGINT NOT NULL, count BIGINT NOT NULL, mean DOUBLE, stddev DOUBLE,
    min DOUBLE, max DOUBLE, m2 DOUBLE
"""

VITALS_DAILY = monthly_table(
    "gold/vitals_daily",
    f"""
    tenant STRING NOT NULL, month DATE NOT NULL, date DATE NOT NULL,
    patient STRING NOT NULL, metric STRING NOT NULL, unit STRING, devices INT NOT NULL,
    {_STATS}
    """,
    keys=("tenant", "date", "patient", "metric"),
    comment="Vital signs per patient, metric and UTC day: mean, stddev, min, max, exact "
    "from the windows' mergeable state.",
    subject="patient",
)

VITALS_WEEKLY = monthly_table(
    "gold/vitals_weekly",
    f"""
    tenant STRING NOT NULL, month DATE NOT NULL, week_start DATE NOT NULL,
    week_end DATE NOT NULL, iso_year INT NOT NULL, iso_week INT NOT NULL,
    patient STRING NOT NULL, metric STRING NOT NULL, unit STRING, days INT NOT NULL,
    {_STATS}
    """,
    keys=("tenant", "week_start", "patient", "metric"),
    comment="Vital signs per patient, metric and ISO week (Monday to Sunday), in the month "
    "of the week's Sunday.",
    subject="patient",
)

VITALS_ALARMS = monthly_table(
    "gold/vitals_alarms",
    """
    tenant STRING NOT NULL, month DATE NOT NULL, date DATE NOT NULL,
    alarm_id STRING NOT NULL, patient STRING NOT NULL, device STRING NOT NULL,
    rule STRING, kind STRING, severity STRING, state STRING, metric STRING,
    ts TIMESTAMP NOT NULL, value DOUBLE, threshold DOUBLE,
    baseline_from TIMESTAMP NOT NULL, baseline_windows BIGINT NOT NULL,
    baseline_count BIGINT NOT NULL, baseline_mean DOUBLE, baseline_stddev DOUBLE,
    deviation DOUBLE, z_score DOUBLE
    """,
    keys=("alarm_id",),
    comment="Each alarm of a patient's device with the patient's baseline of that metric "
    "over the 7 days before it.",
    subject="patient",
)

EXPECTATIONS = Expectations(
    unique(("tenant", "date", "patient", "metric"), action="fail"),
    in_range("count", min=1, action="fail"),
)


def pooled(parts: DataFrame, keys: Sequence[str]) -> DataFrame:
    """Pool parts (rows with count, sum, mean, m2, min, max) per `keys`, exactly.

    M2 of a union = the parts' M2 plus each part's count times its squared distance from
    the union's mean (Chan et al.); so pooling windows into days, and days into weeks,
    gives the same figures as the raw readings would.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    group = Window.partitionBy(*keys)
    # sum / count, not the rounded mean a window's summary carries
    part_mean = F.coalesce(F.col("sum") / F.col("count"), F.col("mean"))
    with_mean = parts.withColumn(
        "_union_mean", F.sum("sum").over(group) / F.sum("count").over(group)
    )
    n = F.sum("count")
    m2 = F.sum(
        F.coalesce(F.col("m2"), F.lit(0.0))
        + F.col("count") * F.pow(part_mean - F.col("_union_mean"), 2)
    )
    out = with_mean.groupBy(*keys).agg(
        F.sum("windows").alias("windows"),
        n.alias("count"),
        F.sum("sum").alias("sum"),
        (F.sum("sum") / n).alias("mean"),
        m2.alias("m2"),
        F.min("min").alias("min"),
        F.max("max").alias("max"),
    )
    return out.withColumn(
        "stddev",
        F.when(F.col("count") > 1, F.sqrt(F.col("m2") / (F.col("count") - 1))),
    )


def _month(column: str):
    from pyspark.sql import functions as F

    return F.trunc(F.col(column), "month")


@monthly_gold(
    "vitals",
    inputs=["silver/readings", EDGE_ALARMS.name, DEVICES.name, CONSENT.name],
    outputs=[VITALS_DAILY.name, VITALS_WEEKLY.name, VITALS_ALARMS.name],
)
def vitals(ctx):
    """One month of patients' vitals per day and week, and its alarms against baselines."""
    from pyspark.sql import functions as F

    start = dt.date.fromisoformat(ctx.bounds["start"])
    end = dt.date.fromisoformat(ctx.bounds["end"])
    read_from = start - dt.timedelta(days=LOOKBACK_DAYS)
    windows = (
        ctx.table("silver/readings")
        .where(
            (F.col("date") >= F.lit(read_from))
            & (F.col("date") < F.lit(end))
            & (F.col("kind") == MONITOR_KIND)
            & (F.col("subject_type") == "patient")
            & F.col("metric").isin(*VITAL_METRICS)
        )
        .select(
            *("tenant", "date", "device", "metric", "unit", "window_start", "window_end"),
            F.col("subject").alias("patient"),
            F.lit(1).cast("long").alias("windows"),
            *("count", "sum", "mean", "m2", "min", "max"),
        )
        .persist()
    )
    try:
        days = _days(windows).persist()
        try:
            in_month = (F.col("date") >= F.lit(start)) & (F.col("date") < F.lit(end))
            daily = days.where(in_month).select(*VITALS_DAILY.columns())
            ctx.write(EXPECTATIONS.apply(ctx, daily).frame, VITALS_DAILY.name)
            ctx.write(_weeks(days, start, end), VITALS_WEEKLY.name)
        finally:
            days.unpersist()
        ctx.write(_alarms(ctx, windows, start, end), VITALS_ALARMS.name)
    finally:
        windows.unpersist()
    return None


def _days(windows: DataFrame) -> DataFrame:
    """Each patient's metrics per day, pooled from the windows (with `sum` for the weeks)."""
    from pyspark.sql import functions as F

    keys = ["tenant", "date", "patient", "metric"]
    labels = windows.groupBy(*keys).agg(
        F.first("unit", ignorenulls=True).alias("unit"),
        F.countDistinct("device").cast("int").alias("devices"),
    )
    return pooled(windows, keys).join(labels, keys).withColumn("month", _month("date"))


def _weeks(days: DataFrame, start: dt.date, end: dt.date) -> DataFrame:
    """ISO weeks (Monday to Sunday) ending in [start, end), pooled from their days."""
    from pyspark.sql import functions as F

    keys = ["tenant", "week_start", "patient", "metric"]
    by_week = days.withColumn("week_start", F.trunc("date", "week"))
    labels = by_week.groupBy(*keys).agg(
        F.first("unit", ignorenulls=True).alias("unit"),
        F.count(F.lit(1)).cast("int").alias("days"),
    )
    return (
        pooled(by_week, keys)
        .join(labels, keys)
        .withColumn("week_end", F.date_add("week_start", 6))
        .where((F.col("week_end") >= F.lit(start)) & (F.col("week_end") < F.lit(end)))
        .withColumn("month", _month("week_end"))
        .withColumn("iso_year", F.year(F.date_add("week_start", 3)))
        .withColumn("iso_week", F.weekofyear("week_start"))
        .select(*VITALS_WEEKLY.columns())
    )


def _alarms(ctx, windows: DataFrame, start: dt.date, end: dt.date) -> DataFrame:
    """The month's alarms of consented patients' devices, each with its 7-day baseline."""
    from pyspark.sql import functions as F

    alarms = ctx.table(EDGE_ALARMS.name).where(
        (F.col("date") >= F.lit(start)) & (F.col("date") < F.lit(end))
    )
    devices = read_reference(ctx.spark, ctx.root, DEVICES).where(
        (F.col("kind") == MONITOR_KIND) & (F.col("subject_type") == "patient")
    )
    patients = gate_device_rows(ctx.spark, ctx.root, alarms, devices, "patient").select(
        "tenant", "date", "alarm_id", "patient", "device", "rule", "kind", "severity", "state",
        "metric", "ts", "value", "threshold",
        (F.col("ts") - F.expr(f"INTERVAL {BASELINE_DAYS} DAYS")).alias("baseline_from"),
    )  # fmt: skip

    w = windows.alias("w")
    p = patients.alias("p")
    inside = w.join(
        p,
        (F.col("w.tenant") == F.col("p.tenant"))
        & (F.col("w.patient") == F.col("p.patient"))
        & (F.col("w.metric") == F.col("p.metric"))
        & (F.col("w.window_start") >= F.col("p.baseline_from"))
        & (F.col("w.window_end") <= F.col("p.ts")),
    ).select("p.alarm_id", "w.windows", "w.count", "w.sum", "w.mean", "w.m2", "w.min", "w.max")
    baseline = pooled(inside, ["alarm_id"]).select(
        "alarm_id",
        F.col("windows").alias("baseline_windows"),
        F.col("count").alias("baseline_count"),
        F.col("mean").alias("baseline_mean"),
        F.col("stddev").alias("baseline_stddev"),
    )
    deviation = F.col("value") - F.col("baseline_mean")
    return (
        patients.join(baseline, "alarm_id", "left")
        .fillna(0, subset=["baseline_windows", "baseline_count"])
        .withColumn("month", _month("date"))
        .withColumn("deviation", deviation)
        .withColumn(
            "z_score",
            F.when(F.col("baseline_stddev") > 0, deviation / F.col("baseline_stddev")),
        )
        .select(*VITALS_ALARMS.columns())
    )


if __name__ == "__main__":
    raise SystemExit(main(vitals))
