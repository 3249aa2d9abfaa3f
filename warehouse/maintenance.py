"""Keeping a Delta table fast as it ages: compaction, removal of unreferenced files, a checkpoint.

Each bronze load adds small files (one per task and partition it touches), and every
read and MERGE pays for each file it lists, and for each commit since the last
checkpoint it replays. `maintain` runs, on one table:

1. OPTIMIZE (bin-packing compaction) up to a target file size, which Delta takes only
   from the session (`spark.databricks.delta.optimize.maxFileSize`), set under the
   session lock;
2. VACUUM with the table's own retention (`delta.deletedFileRetentionDuration`, 7 days
   unless the table declares otherwise): never shorter, so Delta's safety check that
   protects readers of older versions and running writers is never turned off;
3. a checkpoint of the log at the version it leaves, so the next reader replays no
   commit JSON.

It returns what it did as a value, which the maintenance job writes to its run's log.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from edgebatch.warehouse.tables import TableSpec, ensure_table, session_confs

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from edgebatch.warehouse.uri import WarehouseRoot

# Delta's own default for OPTIMIZE; small machines and small tables rarely reach it.
DEFAULT_TARGET_FILE_BYTES = 128 * 1024 * 1024
_MAX_FILE_SIZE = "spark.databricks.delta.optimize.maxFileSize"
_LISTING_PARALLELISM = "spark.sql.sources.parallelPartitionDiscovery.parallelism"


@dataclasses.dataclass(frozen=True)
class MaintenanceReport:
    """What one table's maintenance did; sizes in bytes, counts of data files."""

    table: str
    files_before: int
    bytes_before: int
    files_after: int
    bytes_after: int
    files_compacted: int
    files_written: int
    files_vacuumed: int
    checkpoint_version: int

    def describe(self) -> str:
        return (
            f"{self.table}: {self.files_before} files ({self.bytes_before} bytes) -> "
            f"{self.files_after} files ({self.bytes_after} bytes); OPTIMIZE compacted "
            f"{self.files_compacted} into {self.files_written}; VACUUM removed "
            f"{self.files_vacuumed} unreferenced file(s); checkpoint at version "
            f"{self.checkpoint_version}"
        )


def maintain(
    spark: SparkSession,
    root: WarehouseRoot,
    spec: TableSpec,
    *,
    target_file_bytes: int = DEFAULT_TARGET_FILE_BYTES,
) -> MaintenanceReport:
    """OPTIMIZE, VACUUM and checkpoint one table (created first if it does not exist)."""
    table = ensure_table(spark, root, spec)
    files_before, bytes_before = _size(spark, root, spec)
    with session_confs(spark, {_MAX_FILE_SIZE: str(target_file_bytes)}):
        metrics = table.optimize().executeCompaction().first()
    compacted = int(metrics.metrics.numFilesRemoved) if metrics else 0
    written = int(metrics.metrics.numFilesAdded) if metrics else 0
    location = spec.location(root)
    # VACUUM lists the table's folders in as many tasks as this says, 10 000 by default:
    # minutes of empty tasks for a small table on two cores (seen here). One per core.
    listing = {_LISTING_PARALLELISM: str(spark.sparkContext.defaultParallelism)}
    with session_confs(spark, listing):
        # What VACUUM will remove, counted first: it reports only the table's path.
        vacuumed = spark.sql(f"VACUUM delta.`{location}` DRY RUN").count()
        table.vacuum()
    checkpoint = _checkpoint(spark, location)
    files_after, bytes_after = _size(spark, root, spec)
    return MaintenanceReport(
        table=spec.name,
        files_before=files_before,
        bytes_before=bytes_before,
        files_after=files_after,
        bytes_after=bytes_after,
        files_compacted=compacted,
        files_written=written,
        files_vacuumed=vacuumed,
        checkpoint_version=checkpoint,
    )


def _size(spark: SparkSession, root: WarehouseRoot, spec: TableSpec) -> tuple[int, int]:
    detail = spark.sql(f"DESCRIBE DETAIL delta.`{spec.location(root)}`").first()
    if detail is None:
        return 0, 0
    return int(detail.numFiles or 0), int(detail.sizeInBytes or 0)


def _checkpoint(spark: SparkSession, location: str) -> int:
    """Write a checkpoint of the newest version; Delta's Python API has no call for it."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    log = jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, location)
    log.checkpoint()
    return int(log.unsafeVolatileSnapshot().version())
