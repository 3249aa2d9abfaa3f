"""How new each partition's input is: the newest data file per partition of a job's inputs.

Delta tables here only gain files when rows are written (MERGE inserts, replaceWhere
rewrites a partition, maintenance compacts), so a partition whose input has a file
newer than its last load may have rows its output lacks: late windows and revisions
of a day already rolled up. Compaction can make a partition look changed that is not:
that costs a needless rerun, never a missed one.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from edgebatch.framework.definitions import Job

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from edgebatch.warehouse.uri import WarehouseRoot

log = logging.getLogger(__name__)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def newest_input_files(
    spark: SparkSession, root: WarehouseRoot, job: Job
) -> dict[str, dt.datetime] | None:
    """Partition key -> modification time of its newest input file, over all of `job.inputs`.

    None when the job's inputs cannot say (no declared input tables, or none with
    the job's partition column yet): the planner then plans as if nothing changed.
    """
    from pyspark.sql import functions as F

    from edgebatch.warehouse.tables import REGISTRY, read_table

    expression = job.partitioning.key_expression()
    column = job.partitioning.column
    if expression is None or column is None or not job.inputs:
        return None
    newest: dict[str, dt.datetime] = {}
    looked = False
    for name in job.inputs:
        if name not in REGISTRY:
            continue
        spec = REGISTRY.get(name)
        if column not in spec.struct().fieldNames():
            continue
        try:
            df = read_table(spark, root, spec)
        except Exception as exc:  # a table not created yet has no input to speak of
            log.info("job %s: input %s cannot be read yet (%s)", job.name, name, exc)
            continue
        looked = True
        rows = (
            df.select(
                F.expr(expression).alias("key"),
                F.col("_metadata.file_modification_time").alias("mtime"),
            )
            .groupBy("key")
            .agg(F.unix_micros(F.max("mtime")).alias("mtime"))
            .collect()
        )
        for row in rows:
            if row.key is None or row.mtime is None:
                continue
            mtime = _EPOCH + dt.timedelta(microseconds=row.mtime)
            if row.key not in newest or mtime > newest[row.key]:
                newest[row.key] = mtime
    return newest if looked else None
