"""Gold: fitness per user and month, and how the month compares with the months before.

From the consented windows of fitness trackers in `silver/readings` (the gate), one
month per iteration. A window's `distance` (m/min) and `steps` (steps/min) are rates,
so the window walked `mean x window minutes` metres and took as many steps. Per user
and month, `gold/fitness_monthly` holds the distance and steps, the days the tracker
reported and the active days (at least `ACTIVE_DAY_STEPS` steps), the average daily
distance and steps over the days reported, and the long-run comparisons: the month
before, the same month a year before, a rolling three months, and the user's rank
among the tenant's users that month.

The comparisons are computed from silver (13 months read per iteration), not from the
table's earlier months, so a month's row never depends on which months ran before;
a month's rows are replaced as a whole, and a rerun leaves the table unchanged.

    edgebatch run fitness --from 2026-01 --to 2026-11
    spark-submit --properties-file spark-defaults.conf jobs/fitness.py --partition 2026-11
"""

from __future__ import annotations

import datetime as dt

from edgebatch.framework.entry import main
from edgebatch.framework.expectations import Expectations, in_range, unique
from edgebatch.framework.gold import monthly_gold, monthly_table

TRACKER_KIND = "fitness_tracker"
ACTIVE_DAY_STEPS = 5000.0
# The same month a year before is the furthest back a comparison looks.
HISTORY_MONTHS = 12

FITNESS_MONTHLY = monthly_table(
    "gold/fitness_monthly",
    """
    tenant STRING NOT NULL, month DATE NOT NULL, user STRING NOT NULL,
    days_tracked INT NOT NULL, active_days INT NOT NULL,
    distance_m DOUBLE NOT NULL, steps DOUBLE NOT NULL,
    avg_daily_distance_m DOUBLE NOT NULL, avg_daily_steps DOUBLE NOT NULL,
    prev_month_avg_daily_distance_m DOUBLE, change_vs_prev_month_pct DOUBLE,
    year_ago_avg_daily_distance_m DOUBLE, change_vs_year_ago_pct DOUBLE,
    rolling_3m_avg_daily_distance_m DOUBLE NOT NULL, rolling_3m_days INT NOT NULL,
    rank_in_tenant INT NOT NULL, users_in_tenant INT NOT NULL
    """,
    keys=("tenant", "month", "user"),
    comment="Walking distance and steps per user and month, against the month before, "
    "the same month a year before and a rolling three months, and ranked in the tenant.",
    subject="user",
)

EXPECTATIONS = Expectations(
    unique(("tenant", "month", "user"), action="fail"),
    in_range("active_days", min=0, max=31, action="fail"),
    in_range("distance_m", min=0, action="warn"),
)


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


@monthly_gold("fitness", inputs=["silver/readings"], outputs=[FITNESS_MONTHLY.name], priority=30)
def fitness(ctx):
    """One month of users' walking, compared with the months before it."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    month = dt.date.fromisoformat(ctx.bounds["start"])
    end = dt.date.fromisoformat(ctx.bounds["end"])
    read_from = _add_months(month, -HISTORY_MONTHS)
    minutes = (F.unix_timestamp("window_end") - F.unix_timestamp("window_start")) / 60.0
    walked = F.coalesce(F.col("mean"), F.col("sum") / F.col("count")) * minutes
    windows = ctx.table("silver/readings").where(
        (F.col("date") >= F.lit(read_from))
        & (F.col("date") < F.lit(end))
        & (F.col("kind") == TRACKER_KIND)
        & (F.col("subject_type") == "user")
        & F.col("metric").isin("distance", "steps")
    )
    days = windows.groupBy("tenant", F.col("subject").alias("user"), "date").agg(
        F.sum(F.when(F.col("metric") == "distance", walked).otherwise(0.0)).alias("distance_m"),
        F.sum(F.when(F.col("metric") == "steps", walked).otherwise(0.0)).alias("steps"),
    )
    months = days.groupBy("tenant", "user", F.trunc("date", "month").alias("month")).agg(
        F.count(F.lit(1)).cast("int").alias("days_tracked"),
        F.sum((F.col("steps") >= ACTIVE_DAY_STEPS).cast("int")).cast("int").alias("active_days"),
        F.sum("distance_m").alias("distance_m"),
        F.sum("steps").alias("steps"),
    )
    user = Window.partitionBy("tenant", "user").orderBy(
        (F.year("month") * 12 + F.month("month")).cast("long")
    )
    rolling = user.rangeBetween(-2, 0)
    avg = F.col("distance_m") / F.col("days_tracked")
    history = (
        months.withColumn("avg_daily_distance_m", avg)
        .withColumn("avg_daily_steps", F.col("steps") / F.col("days_tracked"))
        .withColumn("rolling_3m_distance", F.sum("distance_m").over(rolling))
        .withColumn("rolling_3m_days", F.sum("days_tracked").over(rolling).cast("int"))
    )
    before = history.select(
        "tenant", "user", F.add_months("month", 1).alias("month"),
        F.col("avg_daily_distance_m").alias("prev_month_avg_daily_distance_m"),
    )  # fmt: skip
    year_ago = history.select(
        "tenant", "user", F.add_months("month", 12).alias("month"),
        F.col("avg_daily_distance_m").alias("year_ago_avg_daily_distance_m"),
    )  # fmt: skip
    tenant = Window.partitionBy("tenant")
    ranked = Window.partitionBy("tenant").orderBy(F.col("avg_daily_distance_m").desc())

    def change(base: str):
        return F.when(
            F.col(base) > 0,
            (F.col("avg_daily_distance_m") - F.col(base)) / F.col(base) * 100.0,
        )

    out = (
        history.where(F.col("month") == F.lit(month))
        .join(before, ["tenant", "user", "month"], "left")
        .join(year_ago, ["tenant", "user", "month"], "left")
        .withColumn("change_vs_prev_month_pct", change("prev_month_avg_daily_distance_m"))
        .withColumn("change_vs_year_ago_pct", change("year_ago_avg_daily_distance_m"))
        .withColumn(
            "rolling_3m_avg_daily_distance_m",
            F.col("rolling_3m_distance") / F.col("rolling_3m_days"),
        )
        .withColumn("rank_in_tenant", F.rank().over(ranked).cast("int"))
        .withColumn("users_in_tenant", F.count(F.lit(1)).over(tenant).cast("int"))
        .select(*FITNESS_MONTHLY.columns())
    )
    ctx.write(EXPECTATIONS.apply(ctx, out).frame, FITNESS_MONTHLY.name)
    return None


if __name__ == "__main__":
    raise SystemExit(main(fitness))
