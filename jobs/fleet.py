"""Fleet: per vehicle and day distance, speed profile, harsh events, idle time and fuel,
and monthly and quarterly comparisons across the vehicles of a tenant.

Reads `silver/readings` of kind `vehicle` through the consent gate (a vehicle's driver
is who the works council agreement protects: the vehicle is the subject), one month per
iteration. Every figure comes from the windows' exact statistics, never from raw
readings, with the rules below (docs/gold.md, "Fleet", says the same for users):

- a window's **hours** are `window_end - window_start`;
- **distance** is the window's mean speed (km/h) times its hours;
- **speed bands** put a window's hours in the band of its mean speed
  (`SPEED_BANDS_KMH`); **max speed** is the highest reading;
- a **harsh braking** is a window whose lowest acceleration is at or below
  `HARSH_BRAKING_MS2`, a **harsh acceleration** one whose highest is at or above
  `HARSH_ACCELERATION_MS2` (at most one of each per window: a window is the resolution);
- **idle** hours are those of windows whose mean speed is below `IDLE_SPEED_KMH` while
  the mean engine speed is at least `ENGINE_ON_RPM` (no engine window: not idle);
- **fuel** is the window's mean fuel rate (l/h) times its hours;
- **acceleration alarms** are the alarms the vehicle's devices raised on acceleration
  (`bronze/edge_alarms`, state `raised`), counted per day of the alarm: every alarm,
  not at most one per window. Alarms skip silver, so the job applies silver's gate to
  them itself: a device registered to the vehicle that day, a vehicle whose consent
  stands.

`gold/fleet_periods` compares the vehicles over the month and over the quarter to date
(the quarter's months up to this one, recomputed from silver in this month's
iteration, so the last month of a quarter holds the whole quarter). A month's rows in
both tables are replaced as a whole: a rerun changes nothing.

    edgebatch run fleet --from 2026-10 --to 2026-12
    spark-submit --properties-file spark-defaults.conf jobs/fleet.py --partition 2026-11
"""

from __future__ import annotations

import datetime as dt

from edgebatch.framework.consent import gate_device_rows
from edgebatch.framework.entry import main
from edgebatch.framework.expectations import Expectations, in_range, min_rows, unique
from edgebatch.framework.gold import monthly_gold, monthly_table
from edgebatch.warehouse.catalog import EDGE_ALARMS
from edgebatch.warehouse.reference import CONSENT, DEVICES, read_reference

KIND = "vehicle"
SPEED, ACCELERATION, ENGINE_RPM, FUEL_RATE = "speed", "acceleration", "engine_rpm", "fuel_rate"
# (column, lower bound included); each band runs to the next one's lower bound
SPEED_BANDS_KMH = (("hours_0_5", 0.0), ("hours_5_50", 5.0), ("hours_50_90", 50.0),
                   ("hours_90_plus", 90.0))  # fmt: skip
DRIVING_SPEED_KMH = 5.0  # below it a vehicle is standing (the first band)
HARSH_BRAKING_MS2 = -4.0  # about 0.4 g: the usual telematics threshold for harsh braking
HARSH_ACCELERATION_MS2 = 4.0
IDLE_SPEED_KMH = 2.0
ENGINE_ON_RPM = 400.0  # an idling engine turns 600-900 rpm; a stopped one 0
ALARM_METRIC, ALARM_RAISED = ACCELERATION, "raised"  # the agents' deviation alarms

# Rows about a vehicle (and so its driver): consented vehicles only, erased on withdrawal.
FLEET_DAILY = monthly_table(
    "gold/fleet_daily",
    """
    tenant STRING NOT NULL, month DATE NOT NULL, date DATE NOT NULL, vehicle STRING NOT NULL,
    site STRING, devices INT NOT NULL, windows BIGINT NOT NULL,
    distance_km DOUBLE NOT NULL, observed_hours DOUBLE NOT NULL, driving_hours DOUBLE NOT NULL,
    avg_speed_kmh DOUBLE, max_speed_kmh DOUBLE,
    hours_0_5 DOUBLE NOT NULL, hours_5_50 DOUBLE NOT NULL, hours_50_90 DOUBLE NOT NULL,
    hours_90_plus DOUBLE NOT NULL,
    harsh_braking INT NOT NULL, harsh_acceleration INT NOT NULL, min_acceleration_ms2 DOUBLE,
    idle_hours DOUBLE NOT NULL, fuel_l DOUBLE NOT NULL, fuel_l_per_100km DOUBLE,
    acceleration_alarms INT NOT NULL
    """,
    keys=("tenant", "date", "vehicle"),
    comment="Per vehicle and UTC day: distance, time per speed band, harsh events, idle "
    "time and fuel, from the windows of silver/readings.",
    subject="vehicle",
)

FLEET_PERIODS = monthly_table(
    "gold/fleet_periods",
    """
    tenant STRING NOT NULL, month DATE NOT NULL, period STRING NOT NULL,
    period_start DATE NOT NULL, period_end DATE NOT NULL, months INT NOT NULL,
    vehicle STRING NOT NULL, days_active INT NOT NULL,
    distance_km DOUBLE NOT NULL, driving_hours DOUBLE NOT NULL, idle_hours DOUBLE NOT NULL,
    fuel_l DOUBLE NOT NULL, harsh_events BIGINT NOT NULL, max_speed_kmh DOUBLE,
    fuel_l_per_100km DOUBLE, harsh_per_100km DOUBLE,
    fleet_vehicles INT NOT NULL, fleet_avg_distance_km DOUBLE NOT NULL,
    fleet_avg_idle_hours DOUBLE NOT NULL, fleet_avg_fuel_l_per_100km DOUBLE,
    fleet_avg_harsh_per_100km DOUBLE, distance_vs_fleet DOUBLE,
    rank_distance INT NOT NULL, rank_fuel_efficiency INT, rank_harsh INT
    """,
    keys=("tenant", "month", "period", "vehicle"),
    comment="Each vehicle's totals over the month and the quarter to date, beside the "
    "fleet's averages and its rank among the tenant's vehicles.",
    subject="vehicle",
)

DAILY_EXPECTATIONS = Expectations(
    unique(("tenant", "date", "vehicle"), action="fail", name="one_row_per_vehicle_day"),
    in_range("distance_km", min=0, action="fail"),
    in_range("max_speed_kmh", min=0, max=250, action="warn"),
    in_range("observed_hours", min=0, max=24, action="warn"),
    min_rows(1, action="warn"),
)


def quarter_start(month: dt.date) -> dt.date:
    return dt.date(month.year, 3 * ((month.month - 1) // 3) + 1, 1)


def vehicle_windows(readings):
    """One row per vehicle window: hours and the four metrics' statistics side by side."""
    from pyspark.sql import functions as F

    def of(metric: str, stat: str, name: str):
        return F.max(F.when(F.col("metric") == metric, F.col(stat))).alias(name)

    return (
        readings.where(F.col("kind") == KIND)
        .where(F.col("metric").isin(SPEED, ACCELERATION, ENGINE_RPM, FUEL_RATE))
        .groupBy("tenant", "subject", "device", "date", "window_start", "window_end")
        .agg(
            F.first("site", ignorenulls=True).alias("site"),
            of(SPEED, "mean", "speed_mean"),
            of(SPEED, "max", "speed_max"),
            of(ACCELERATION, "min", "accel_min"),
            of(ACCELERATION, "max", "accel_max"),
            of(ENGINE_RPM, "mean", "rpm_mean"),
            of(FUEL_RATE, "mean", "fuel_mean"),
        )
        .withColumn(
            "hours",
            (F.col("window_end").cast("double") - F.col("window_start").cast("double")) / 3600.0,
        )
    )


def daily(windows):
    """Per tenant, vehicle and day: the figures of `FLEET_DAILY` (without `month`)."""
    from pyspark.sql import functions as F

    speed, hours = F.col("speed_mean"), F.col("hours")
    has_speed = speed.isNotNull()

    def hours_where(condition):
        return F.sum(F.when(condition, hours).otherwise(0.0))

    bands = []
    for i, (name, low) in enumerate(SPEED_BANDS_KMH):
        cond = has_speed & (speed >= low) if i else has_speed
        if i + 1 < len(SPEED_BANDS_KMH):
            cond = cond & (speed < SPEED_BANDS_KMH[i + 1][1])
        bands.append(hours_where(cond).alias(name))
    idle = (speed < IDLE_SPEED_KMH) & (F.col("rpm_mean") >= ENGINE_ON_RPM)
    out = windows.groupBy("tenant", F.col("subject").alias("vehicle"), "date").agg(
        F.first("site", ignorenulls=True).alias("site"),
        F.countDistinct("device").cast("int").alias("devices"),
        F.count(F.lit(1)).alias("windows"),
        F.sum(F.coalesce(speed * hours, F.lit(0.0))).alias("distance_km"),
        hours_where(has_speed).alias("observed_hours"),
        hours_where(has_speed & (speed >= DRIVING_SPEED_KMH)).alias("driving_hours"),
        F.max("speed_max").alias("max_speed_kmh"),
        *bands,
        F.sum((F.col("accel_min") <= HARSH_BRAKING_MS2).cast("int")).alias("harsh_braking"),
        F.sum((F.col("accel_max") >= HARSH_ACCELERATION_MS2).cast("int")).alias(
            "harsh_acceleration"
        ),
        F.min("accel_min").alias("min_acceleration_ms2"),
        hours_where(F.coalesce(idle, F.lit(False))).alias("idle_hours"),
        F.sum(F.coalesce(F.col("fuel_mean") * hours, F.lit(0.0))).alias("fuel_l"),
    )
    per_100km = lambda c: F.when(  # noqa: E731
        F.col("distance_km") > 0, F.col(c) / F.col("distance_km") * 100.0
    )
    return out.select(
        "tenant",
        F.trunc("date", "month").alias("month"),
        "date",
        "vehicle",
        "site",
        "devices",
        "windows",
        "distance_km",
        "observed_hours",
        "driving_hours",
        F.when(F.col("observed_hours") > 0, F.col("distance_km") / F.col("observed_hours")).alias(
            "avg_speed_kmh"
        ),
        "max_speed_kmh",
        *[name for name, _ in SPEED_BANDS_KMH],
        F.coalesce(F.col("harsh_braking"), F.lit(0)).cast("int").alias("harsh_braking"),
        F.coalesce(F.col("harsh_acceleration"), F.lit(0)).cast("int").alias("harsh_acceleration"),
        "min_acceleration_ms2",
        "idle_hours",
        "fuel_l",
        per_100km("fuel_l").alias("fuel_l_per_100km"),
    )


def acceleration_alarms(ctx, first: dt.date, last: dt.date):
    """Per tenant, vehicle and day of `[first, last]`: acceleration alarms raised, of
    devices registered to the vehicle that day and vehicles whose consent stands (the
    gate silver applies to windows; alarms do not pass through silver)."""
    from pyspark.sql import functions as F

    alarms = ctx.table(EDGE_ALARMS.name).where(
        (F.col("date") >= F.lit(first))
        & (F.col("date") <= F.lit(last))
        & (F.col("metric") == ALARM_METRIC)
        & (F.col("state") == ALARM_RAISED)
    )
    devices = read_reference(ctx.spark, ctx.root, DEVICES).where(F.col("kind") == KIND)
    return (
        gate_device_rows(ctx.spark, ctx.root, alarms, devices, "vehicle")
        .groupBy("tenant", "vehicle", "date")
        .agg(F.countDistinct("alarm_id").cast("int").alias("acceleration_alarms"))
    )


def with_alarms(days, alarms):
    """The daily rows with their day's acceleration alarms (0 without any). An alarm on a
    day without a window of the vehicle has no row to go to: the row is the day's windows."""
    from pyspark.sql import functions as F

    return (
        days.join(alarms, ["tenant", "vehicle", "date"], "left")
        .withColumn("acceleration_alarms", F.coalesce("acceleration_alarms", F.lit(0)))
        .select(*FLEET_DAILY.columns())
    )


def periods(days, period: str, start: dt.date, end: dt.date, month: dt.date, months: int):
    """Each vehicle's totals over `[start, end]` beside the fleet's averages and its ranks."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    per_100km = lambda c: F.when(  # noqa: E731
        F.col("distance_km") > 0, F.col(c) / F.col("distance_km") * 100.0
    )
    totals = (
        days.where((F.col("date") >= F.lit(start)) & (F.col("date") <= F.lit(end)))
        .groupBy("tenant", "vehicle")
        .agg(
            F.countDistinct("date").cast("int").alias("days_active"),
            F.sum("distance_km").alias("distance_km"),
            F.sum("driving_hours").alias("driving_hours"),
            F.sum("idle_hours").alias("idle_hours"),
            F.sum("fuel_l").alias("fuel_l"),
            F.sum(F.col("harsh_braking") + F.col("harsh_acceleration"))
            .cast("long")
            .alias("harsh_events"),
            F.max("max_speed_kmh").alias("max_speed_kmh"),
        )
        .withColumn("fuel_l_per_100km", per_100km("fuel_l"))
        .withColumn("harsh_per_100km", per_100km("harsh_events"))
    )
    fleet = Window.partitionBy("tenant")

    def rank(column, descending: bool = False):
        order = F.col(column).desc_nulls_last() if descending else F.col(column).asc_nulls_last()
        ranked = F.rank().over(Window.partitionBy("tenant").orderBy(order))
        return F.when(F.col(column).isNotNull(), ranked).cast("int")

    return totals.select(
        "tenant",
        F.lit(month).alias("month"),
        F.lit(period).alias("period"),
        F.lit(start).alias("period_start"),
        F.lit(end).alias("period_end"),
        F.lit(months).alias("months"),
        "vehicle",
        "days_active",
        "distance_km",
        "driving_hours",
        "idle_hours",
        "fuel_l",
        "harsh_events",
        "max_speed_kmh",
        "fuel_l_per_100km",
        "harsh_per_100km",
        F.count(F.lit(1)).over(fleet).cast("int").alias("fleet_vehicles"),
        F.avg("distance_km").over(fleet).alias("fleet_avg_distance_km"),
        F.avg("idle_hours").over(fleet).alias("fleet_avg_idle_hours"),
        F.avg("fuel_l_per_100km").over(fleet).alias("fleet_avg_fuel_l_per_100km"),
        F.avg("harsh_per_100km").over(fleet).alias("fleet_avg_harsh_per_100km"),
        F.when(
            F.avg("distance_km").over(fleet) > 0,
            F.col("distance_km") / F.avg("distance_km").over(fleet),
        ).alias("distance_vs_fleet"),
        rank("distance_km", descending=True).alias("rank_distance"),
        rank("fuel_l_per_100km").alias("rank_fuel_efficiency"),
        rank("harsh_per_100km").alias("rank_harsh"),
    )


@monthly_gold(
    "fleet",
    inputs=["silver/readings", EDGE_ALARMS.name, DEVICES.name, CONSENT.name],
    outputs=[FLEET_DAILY.name, FLEET_PERIODS.name],
)
def fleet(ctx):
    """One month of vehicle days, and the month's and quarter-to-date comparisons."""
    from pyspark.sql import functions as F

    month = dt.date.fromisoformat(ctx.bounds["start"])
    month_end = dt.date.fromisoformat(ctx.bounds["end"]) - dt.timedelta(days=1)
    first = quarter_start(month)
    readings = ctx.table("silver/readings").where(
        f"date >= DATE '{first.isoformat()}' AND date <= DATE '{month_end.isoformat()}'"
    )
    alarms = acceleration_alarms(ctx, first, month_end)
    days = with_alarms(daily(vehicle_windows(readings)), alarms).persist()
    try:
        this_month = days.where(F.col("month") == F.lit(month))
        checked = DAILY_EXPECTATIONS.apply(ctx, this_month)
        ctx.write(checked.frame, FLEET_DAILY.name)
        months_covered = month.month - first.month + 1
        compared = periods(days, "month", month, month_end, month, 1).unionByName(
            periods(days, "quarter", first, month_end, month, months_covered)
        )
        ctx.write(compared, FLEET_PERIODS.name)
    finally:
        days.unpersist()
    return None


if __name__ == "__main__":
    raise SystemExit(main(fleet))
