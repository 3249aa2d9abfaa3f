"""A small job the dashboard's browser test runs for real: a few log lines over a couple of
seconds (so the log pane has something to follow live), then 1,234 rows per day."""

from __future__ import annotations

import os
import time

from edgebatch.framework.definitions import job
from edgebatch.framework.partitions import Daily
from edgebatch.warehouse.tables import declare

PLANT_ENERGY = declare(
    "dash/plant_energy",
    "line STRING NOT NULL, date DATE NOT NULL, kwh DOUBLE",
    keys=("line", "date"),
    partition_by=("date",),
)
ROWS = 1234


@job(outputs=["dash/plant_energy"], partitions=Daily(column="date", start="2026-11-01"))
def plant_energy(ctx):
    pause = float(os.environ.get("EDGEBATCH_DASH_STEP_S", "0.6"))
    for block in range(1, 5):
        ctx.log.info("reading meter block %d of 4 for %s", block, ctx.partition)
        time.sleep(pause)
    return ctx.spark.range(0, ROWS).selectExpr(
        "concat('line-', cast(id as string)) as line",
        f"DATE'{ctx.partition}' as date",
        "cast(id as double) * 0.25 as kwh",
    )
