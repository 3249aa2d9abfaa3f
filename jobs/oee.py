"""Bottling OEE: availability x performance x quality per production batch, and its trend.

A batch (`reference/batches`) is a line's planned run of one product, from
`planned_start` to `planned_end`, at an ideal rate in bottles per minute. The line's
windows in `silver/readings` (read through the consent gate) that overlap the planned
time give, each for the minutes of it inside the batch (a window half inside counts
half):

- bottles made = the window's mean `bottles` rate (bottles/min) x those minutes, and
  rejects likewise from the `rejects` rate;
- running time = those minutes of the `bottles` windows whose mean rate is above
  `RUNNING_FRACTION` of the batch's ideal rate (below it the line is stopped or
  starting up); planned minutes without any window count as stopped.

Then availability = running / planned minutes, performance = bottles / (ideal rate x
running minutes), quality = (bottles - rejects) / bottles, and OEE = good bottles /
(ideal rate x planned minutes), which is their product whenever all three are defined
(and 0 when the line made nothing). The trend puts each batch beside the previous
batch of its line (also across months) and the mean OEE of the line's last
`TREND_BATCHES` batches, this one included.

One iteration per month: the batches that *started* in it, each line's preceding
batches recomputed alongside for the trend, so a month's rows depend on nothing but
silver and the reference data and rerunning it changes nothing.

    edgebatch run oee --from 2026-11 --to 2026-12
    spark-submit --properties-file spark-defaults.conf jobs/oee.py --partition 2026-11
"""

from __future__ import annotations

from edgebatch.framework.consent import consented
from edgebatch.framework.entry import main
from edgebatch.framework.expectations import Expectations, in_range, min_rows, unique
from edgebatch.framework.gold import monthly_gold, monthly_table
from edgebatch.warehouse.reference import BATCHES, DEVICES

RUNNING_FRACTION = 0.1
"""A window counts as running when its mean bottle rate is above this share of the ideal."""
TREND_BATCHES = 5
"""The rolling mean's length, in batches of the same line."""

# A line is not a person, but it is the subject its readings are registered to, and the
# tenant grants (or withdraws) consent for it like for anyone: the gate keeps silver from
# a line without consent, so the OEE of such a line is not computed, and a withdrawal
# erases its batches here too (consent_erase), as it does in silver.
OEE_BATCHES = monthly_table(
    "gold/oee_batches",
    """
    tenant STRING NOT NULL, month DATE NOT NULL, line STRING NOT NULL,
    subject STRING NOT NULL, site STRING, batch STRING NOT NULL, product STRING,
    planned_start TIMESTAMP NOT NULL, planned_end TIMESTAMP NOT NULL,
    ideal_rate DOUBLE NOT NULL, planned_minutes DOUBLE NOT NULL,
    running_minutes DOUBLE NOT NULL, windows BIGINT NOT NULL, bottles DOUBLE NOT NULL,
    rejects DOUBLE NOT NULL, good DOUBLE NOT NULL, availability DOUBLE NOT NULL,
    performance DOUBLE, quality DOUBLE, oee DOUBLE NOT NULL, previous_batch STRING,
    previous_oee DOUBLE, oee_change DOUBLE, rolling_oee DOUBLE NOT NULL,
    rolling_batches INT NOT NULL
    """,
    keys=("tenant", "batch"),
    comment="OEE per production batch (availability x performance x quality) and its "
    "trend against the line's previous batches; month = the month the batch started.",
    subject="subject",
)

EXPECTATIONS = Expectations(
    unique(("tenant", "batch"), action="fail", name="one_row_per_batch"),
    # above 1 only if a line's windows overlap each other (a coarsened window beside its
    # members): worth a look, not a reason to hold the month back
    in_range("availability", min=0.0, max=1.0, action="warn"),
    in_range("quality", min=0.0, max=1.0, action="warn"),
    in_range("performance", min=0.0, max=1.5, action="warn"),
    min_rows(1, action="warn"),
)


def line_batches(ctx):
    """Batches of registered lines (kind bottling_line, the registry row valid on the day
    the batch starts) whose subject has consent, with site and subject."""
    from pyspark.sql import functions as F

    from edgebatch.warehouse.reference import read_reference
    from edgebatch.warehouse.tables import ensure_table

    for spec in (BATCHES, DEVICES):
        ensure_table(ctx.spark, ctx.root, spec)
    b = read_reference(ctx.spark, ctx.root, BATCHES).alias("b")
    d = read_reference(ctx.spark, ctx.root, DEVICES).where("kind = 'bottling_line'").alias("d")
    day = F.to_date("b.planned_start")
    on = (
        (F.col("b.tenant") == F.col("d.tenant"))
        & (F.col("b.line") == F.col("d.device"))
        & (day >= F.col("d.installed_on"))
        & (F.col("d.removed_on").isNull() | (day < F.col("d.removed_on")))
    )
    registered = b.join(d, on).select("b.*", "d.site", "d.subject")
    return registered.join(consented(ctx.spark, ctx.root), ["tenant", "subject"], "left_semi")


def batch_figures(windows, batches):
    """Per batch: minutes planned and running, windows, bottles and rejects (see above)."""
    from pyspark.sql import functions as F

    w, b = windows.alias("w"), batches.alias("b")
    start = F.greatest(F.col("w.window_start"), F.col("b.planned_start"))
    end = F.least(F.col("w.window_end"), F.col("b.planned_end"))
    overlap = (F.unix_micros(end) - F.unix_micros(start)) / F.lit(60e6)
    joined = b.join(
        w,
        (F.col("w.tenant") == F.col("b.tenant"))
        & (F.col("w.device") == F.col("b.line"))
        & (F.col("w.window_start") < F.col("b.planned_end"))
        & (F.col("w.window_end") > F.col("b.planned_start")),
        "left",
    ).select("b.*", F.col("w.metric"), F.col("w.mean"), overlap.alias("_minutes"))
    is_bottles = F.col("metric") == "bottles"
    running = is_bottles & (F.col("mean") > F.lit(RUNNING_FRACTION) * F.col("ideal_rate"))
    made = lambda metric: F.sum(  # noqa: E731
        F.when(F.col("metric") == metric, F.col("mean") * F.col("_minutes")).otherwise(0.0)
    )
    return joined.groupBy(*batches.columns).agg(
        F.sum(F.when(running, F.col("_minutes")).otherwise(0.0)).alias("running_minutes"),
        F.count(F.when(is_bottles, 1)).alias("windows"),
        made("bottles").alias("bottles"),
        made("rejects").alias("rejects"),
    )


def with_oee(figures):
    from pyspark.sql import functions as F

    planned = (F.unix_micros("planned_end") - F.unix_micros("planned_start")) / F.lit(60e6)
    df = figures.withColumn("planned_minutes", planned).withColumn(
        "good", F.col("bottles") - F.col("rejects")
    )
    return df.select(
        "*",
        (F.col("running_minutes") / F.col("planned_minutes")).alias("availability"),
        F.when(
            F.col("running_minutes") > 0,
            F.col("bottles") / (F.col("ideal_rate") * F.col("running_minutes")),
        ).alias("performance"),
        F.when(F.col("bottles") > 0, F.col("good") / F.col("bottles")).alias("quality"),
        (F.col("good") / (F.col("ideal_rate") * F.col("planned_minutes"))).alias("oee"),
    )


def with_trend(df):
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    line = Window.partitionBy("tenant", "line").orderBy("planned_start", "batch")
    last_n = line.rowsBetween(-(TREND_BATCHES - 1), 0)
    return df.select(
        "*",
        F.lag("batch").over(line).alias("previous_batch"),
        F.lag("oee").over(line).alias("previous_oee"),
        (F.col("oee") - F.lag("oee").over(line)).alias("oee_change"),
        F.avg("oee").over(last_n).alias("rolling_oee"),
        F.count(F.lit(1)).over(last_n).cast("int").alias("rolling_batches"),
    )


@monthly_gold(
    "oee",
    inputs=["silver/readings", BATCHES.name, DEVICES.name],
    outputs=[OEE_BATCHES.name],
)
def oee(ctx):
    """OEE of the batches that started in the month, and their trend across batches."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    month_start, month_end = ctx.bounds["start"], ctx.bounds["end"]
    batches = line_batches(ctx)
    started = F.trunc(F.to_date("planned_start"), "month")
    # this month's batches and, per line, the TREND_BATCHES - 1 before the first of them
    order = Window.partitionBy("tenant", "line").orderBy("planned_start", "batch")
    numbered = batches.where(started < F.lit(month_end).cast("date")).withColumn(
        "_n", F.row_number().over(order)
    )
    firsts = (
        numbered.where(started >= F.lit(month_start).cast("date"))
        .groupBy("tenant", "line")
        .agg(F.min("_n").alias("_first"))
    )
    wanted = (
        numbered.join(firsts, ["tenant", "line"])
        .where(F.col("_n") > F.col("_first") - TREND_BATCHES)
        .drop("_n", "_first")
        .persist()
    )
    try:
        span = wanted.agg(
            F.min(F.to_date("planned_start")).alias("lo"),
            F.max(F.to_date("planned_end")).alias("hi"),
            F.count(F.lit(1)).alias("n"),
        ).first()
        if span is None or not span.n:
            ctx.log.info("oee: no batch of a consented bottling line started in %s", ctx.partition)
            ctx.write(ctx.spark.createDataFrame([], OEE_BATCHES.struct()), OEE_BATCHES.name)
            return None
        windows = (
            ctx.table("silver/readings")
            .where(F.col("date").between(F.lit(span.lo), F.lit(span.hi)))
            .where("kind = 'bottling_line' AND metric IN ('bottles', 'rejects')")
            .select("tenant", "device", "metric", "window_start", "window_end", "mean")
        )
        rows = with_trend(with_oee(batch_figures(windows, F.broadcast(wanted))))
        month = rows.where(started == F.lit(month_start).cast("date")).withColumn("month", started)
        checked = EXPECTATIONS.apply(ctx, month.select(*OEE_BATCHES.columns()))
        ctx.write(checked.frame, OEE_BATCHES.name)
    finally:
        wanted.unpersist()
    return None


if __name__ == "__main__":
    raise SystemExit(main(oee))
