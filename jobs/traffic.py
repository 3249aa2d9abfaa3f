"""Traffic: vehicle counts and travel times per route by hour of day, by day of week, and
on special-event days against ordinary days.

Reads `silver/readings` of kind `traffic_counter` through the consent gate (the subject
is the route), one month per iteration, and the special-event days of
`reference/events`. From each window's exact statistics:

- a window's **vehicles** are its mean rate (vehicles/min) times its minutes;
- **average travel time** and **speed** are means over every reading of the windows
  taken together (sum of sums over sum of counts), exact however windows are cut;
- the **hour of day** is the UTC hour the window starts in, the **day of week** that of
  its UTC date (1 = Monday ... 7 = Sunday);
- a day is a **special-event day** for a route when `reference/events` names an event
  that day for the route or for `all` routes.

A month's rows are replaced as a whole: a rerun changes nothing. Routes are not
people, yet their tables register as subject-bearing (subject: the route), as silver
does: a tenant that withdraws a route's consent has it erased from gold like any
subject, with no special case (docs/gold.md, "Traffic").

    edgebatch run traffic --partition 2026-11
    spark-submit --properties-file spark-defaults.conf jobs/traffic.py --partition 2026-11
"""

from __future__ import annotations

from edgebatch.framework.entry import main
from edgebatch.framework.expectations import Expectations, in_range, min_rows, unique
from edgebatch.framework.gold import monthly_gold, monthly_table
from edgebatch.warehouse.reference import EVENT_ALL_ROUTES, EVENTS

KIND = "traffic_counter"
VEHICLES, AVG_SPEED, TRAVEL_TIME = "vehicles", "avg_speed", "travel_time"
HOUR_OF_DAY, DAY_OF_WEEK, DAY_TYPE = "hour_of_day", "day_of_week", "day_type"
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

# Routes are subjects like any other (the tenant grants them): erased on withdrawal.
TRAFFIC_PROFILE = monthly_table(
    "gold/traffic_profile",
    """
    tenant STRING NOT NULL, month DATE NOT NULL, route STRING NOT NULL,
    dimension STRING NOT NULL, bucket INT NOT NULL, label STRING NOT NULL,
    days INT NOT NULL, windows BIGINT NOT NULL, observed_hours DOUBLE NOT NULL,
    vehicles DOUBLE NOT NULL, vehicles_per_day DOUBLE NOT NULL, vehicles_per_hour DOUBLE,
    avg_travel_time_s DOUBLE, avg_speed_kmh DOUBLE
    """,
    keys=("tenant", "month", "route", "dimension", "bucket"),
    comment="Per route and month: vehicles and travel times by hour of day, day of week "
    "and day type (ordinary or special-event day).",
    subject="route",
)

TRAFFIC_EVENT_DAYS = monthly_table(
    "gold/traffic_event_days",
    """
    tenant STRING NOT NULL, month DATE NOT NULL, date DATE NOT NULL, route STRING NOT NULL,
    events STRING NOT NULL, vehicles DOUBLE NOT NULL, avg_travel_time_s DOUBLE,
    ordinary_days INT NOT NULL, ordinary_vehicles_per_day DOUBLE,
    ordinary_avg_travel_time_s DOUBLE, vehicles_vs_ordinary DOUBLE,
    travel_time_vs_ordinary DOUBLE
    """,
    keys=("tenant", "date", "route"),
    comment="Each special-event day of a route beside the route's ordinary days of the same month.",
    subject="route",
)

EXPECTATIONS = Expectations(
    unique(("tenant", "route", "dimension", "bucket"), action="fail", name="one_row_per_bucket"),
    in_range("vehicles", min=0, action="fail"),
    in_range("avg_travel_time_s", min=0, action="warn"),
    min_rows(1, action="warn"),
)


def route_windows(readings):
    """One row per counter window: minutes, vehicles, and travel time and speed sums."""
    from pyspark.sql import functions as F

    def of(metric: str, stat: str, name: str):
        return F.max(F.when(F.col("metric") == metric, F.col(stat))).alias(name)

    windows = (
        readings.where(F.col("kind") == KIND)
        .where(F.col("metric").isin(VEHICLES, AVG_SPEED, TRAVEL_TIME))
        .groupBy(
            "tenant",
            F.col("subject").alias("route"),
            "device",
            "date",
            "window_start",
            "window_end",
        )  # fmt: skip
        .agg(
            of(VEHICLES, "mean", "rate"),
            of(TRAVEL_TIME, "sum", "travel_sum"),
            of(TRAVEL_TIME, "count", "travel_count"),
            of(AVG_SPEED, "sum", "speed_sum"),
            of(AVG_SPEED, "count", "speed_count"),
        )
    )
    start = F.col("window_start").cast("double")
    minutes = (F.col("window_end").cast("double") - start) / 60.0
    return windows.select(
        "*",
        minutes.alias("minutes"),
        F.coalesce(F.col("rate") * minutes, F.lit(0.0)).alias("vehicles"),
        # from epoch seconds, so the hour is UTC whatever the session's time zone
        F.floor(F.pmod(start, F.lit(86400.0)) / 3600).cast("int").alias("hour"),
        (F.weekday("date") + 1).alias("weekday"),
    )


def event_names(windows, events):
    """(tenant, route, date, events): the names of the day's events for the route, or ''."""
    from pyspark.sql import functions as F

    days = windows.select("tenant", "route", "date").distinct().alias("d")
    named = events.select(
        "tenant", "date", "name", F.explode(F.split("routes", ";")).alias("for_route")
    ).alias("e")
    on = (
        (F.col("d.tenant") == F.col("e.tenant"))
        & (F.col("d.date") == F.col("e.date"))
        & ((F.col("e.for_route") == EVENT_ALL_ROUTES) | (F.col("e.for_route") == F.col("d.route")))
    )
    return (
        days.join(named, on, "left")
        .groupBy("d.tenant", "d.route", "d.date")
        .agg(F.array_join(F.array_sort(F.collect_set("e.name")), "; ").alias("events"))
    )


def _totals(frame, *keys):
    from pyspark.sql import functions as F

    return frame.groupBy(*keys).agg(
        F.countDistinct("date").cast("int").alias("days"),
        F.count(F.lit(1)).alias("windows"),
        (F.sum("minutes") / 60.0).alias("observed_hours"),
        F.sum("vehicles").alias("vehicles"),
        (F.sum("travel_sum") / F.sum("travel_count")).alias("avg_travel_time_s"),
        (F.sum("speed_sum") / F.sum("speed_count")).alias("avg_speed_kmh"),
    )


def profile(windows, month):
    """`TRAFFIC_PROFILE`'s rows: one per route, dimension and bucket."""
    from pyspark.sql import functions as F

    keys = ("tenant", "route")
    labels = F.array(*[F.lit(d) for d in WEEKDAYS])
    by = [
        (HOUR_OF_DAY, F.col("hour"), F.format_string("%02d:00", F.col("bucket"))),
        (DAY_OF_WEEK, F.col("weekday"), F.element_at(labels, F.col("bucket"))),
        (
            DAY_TYPE,
            (F.col("events") != "").cast("int"),
            F.when(F.col("bucket") == 1, "event").otherwise("ordinary"),
        ),
    ]
    parts = []
    for dimension, bucket, label in by:
        totals = _totals(windows.withColumn("bucket", bucket), *keys, "bucket")
        parts.append(
            totals.select(
                "tenant",
                F.lit(month).alias("month"),
                "route",
                F.lit(dimension).alias("dimension"),
                F.col("bucket").cast("int").alias("bucket"),
                label.alias("label"),
                "days",
                "windows",
                "observed_hours",
                "vehicles",
                (F.col("vehicles") / F.col("days")).alias("vehicles_per_day"),
                F.when(
                    F.col("observed_hours") > 0, F.col("vehicles") / F.col("observed_hours")
                ).alias("vehicles_per_hour"),
                "avg_travel_time_s",
                "avg_speed_kmh",
            )
        )
    out = parts[0]
    for part in parts[1:]:
        out = out.unionByName(part)
    return out


def event_days(windows, month):
    """`TRAFFIC_EVENT_DAYS`' rows: each event day of a route beside its ordinary days."""
    from pyspark.sql import functions as F

    keys = ("tenant", "route")
    per_day = _totals(windows.where(F.col("events") != ""), *keys, "date", "events")
    ordinary = _totals(windows.where(F.col("events") == ""), *keys).select(
        *keys,
        F.col("days").alias("ordinary_days"),
        (F.col("vehicles") / F.col("days")).alias("ordinary_vehicles_per_day"),
        F.col("avg_travel_time_s").alias("ordinary_avg_travel_time_s"),
    )
    joined = per_day.join(ordinary, list(keys), "left")
    return joined.select(
        "tenant",
        F.lit(month).alias("month"),
        "date",
        "route",
        "events",
        "vehicles",
        "avg_travel_time_s",
        F.coalesce(F.col("ordinary_days"), F.lit(0)).cast("int").alias("ordinary_days"),
        "ordinary_vehicles_per_day",
        "ordinary_avg_travel_time_s",
        F.when(
            F.col("ordinary_vehicles_per_day") > 0,
            F.col("vehicles") / F.col("ordinary_vehicles_per_day"),
        ).alias("vehicles_vs_ordinary"),
        F.when(
            F.col("ordinary_avg_travel_time_s") > 0,
            F.col("avg_travel_time_s") / F.col("ordinary_avg_travel_time_s"),
        ).alias("travel_time_vs_ordinary"),
    )


@monthly_gold(
    "traffic",
    inputs=["silver/readings", EVENTS.name],
    outputs=[TRAFFIC_PROFILE.name, TRAFFIC_EVENT_DAYS.name],
)
def traffic(ctx):
    """One month of a tenant's routes: profiles by hour, weekday and day type; event days."""
    import datetime as dt

    from edgebatch.warehouse.reference import read_reference
    from edgebatch.warehouse.tables import ensure_table

    month = dt.date.fromisoformat(ctx.bounds["start"])
    readings = ctx.table("silver/readings").where(ctx.predicate("date"))
    ensure_table(ctx.spark, ctx.root, EVENTS)
    events = read_reference(ctx.spark, ctx.root, EVENTS).where(ctx.predicate("date"))
    windows = route_windows(readings)
    windows = windows.join(
        event_names(windows, events), ["tenant", "route", "date"], "left"
    ).persist()
    try:
        checked = EXPECTATIONS.apply(ctx, profile(windows, month))
        ctx.write(checked.frame, TRAFFIC_PROFILE.name)
        ctx.write(event_days(windows, month), TRAFFIC_EVENT_DAYS.name)
    finally:
        windows.unpersist()
    return None


if __name__ == "__main__":
    raise SystemExit(main(traffic))
