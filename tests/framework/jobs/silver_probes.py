"""Jobs the silver tests run: an expectation probe whose rule actions come from the run's
parameters, and a gold-like table of subjects built from silver through the gate."""

from __future__ import annotations

from edgebatch.framework.consent import subject_bearing
from edgebatch.framework.definitions import Retry, job
from edgebatch.framework.expectations import Expectations, in_range, min_rows, not_null, unique
from edgebatch.framework.partitions import Daily, Unpartitioned
from edgebatch.warehouse.tables import declare

PROBE = declare(
    "test/expectation_probe",
    "id BIGINT, reading DOUBLE, date DATE NOT NULL",
    partition_by=("date",),
)

SUBJECT_TOTALS = declare(
    "gold/test_subject_totals",
    "tenant STRING NOT NULL, customer STRING NOT NULL, readings BIGINT",
    partition_by=("tenant",),
)
subject_bearing(SUBJECT_TOTALS.name, subject="customer")


@job(
    outputs=[PROBE.name],
    partitions=Daily(column="date"),
    retry=Retry(attempts=1),
    tags=("test",),
)
def expectation_probe(ctx):
    """Ten rows, of which id 3 has a null reading, id 7 a reading out of range and id 9
    appears twice; each rule's action is the run's parameter of its name (`engine=arrow`:
    judged as an Arrow table in the driver)."""
    action = ctx.params.get
    checks = Expectations(
        not_null("reading", action=action("not_null", "warn")),
        in_range("reading", min=0, max=100, action=action("range", "warn"), name="reading_0_100"),
        unique(("id",), action=action("unique", "warn")),
        min_rows(int(action("floor", "1")), action=action("min_rows", "warn")),
    )
    rows = ctx.spark.range(0, 10).selectExpr(
        "id",
        "CASE WHEN id = 3 THEN NULL WHEN id = 7 THEN 250.0 ELSE id * 10.0 END AS reading",
        f"DATE'{ctx.partition}' AS date",
    )
    rows = rows.unionByName(rows.where("id = 9"))
    if action("engine", "spark") == "arrow":  # the same rows, judged in the driver
        checked = checks.apply(ctx, rows.toArrow())
        return ctx.spark.createDataFrame(checked.frame)
    return checks.apply(ctx, rows).frame


@job(
    inputs=["silver/readings"],
    outputs=[SUBJECT_TOTALS.name],
    partitions=Unpartitioned(),
    retry=Retry(attempts=1),
    tags=("test",),
)
def subject_totals(ctx):
    """Readings per customer, from silver through the consent gate (as a gold job would)."""
    from pyspark.sql import functions as F

    return (
        ctx.table("silver/readings")
        .groupBy("tenant", F.col("subject").alias("customer"))
        .agg(F.sum("count").alias("readings"))
    )
