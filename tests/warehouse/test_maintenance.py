"""The maintenance job on real Delta tables: small files compacted, unreferenced files
vacuumed only past the table's retention, a checkpoint written, rows unchanged, and the
figures in the run's log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from deltalake import DeltaTable as RustTable

from edgebatch.warehouse.maintenance import maintain
from edgebatch.warehouse.tables import TableSpec, append, declare, read_table

pytestmark = pytest.mark.integration

# Retention 0 hours: declared by the table, so VACUUM may remove what OPTIMIZE replaced
# at once without turning Delta's retention check off.
SMALL = declare(
    "test/maintained",
    "id BIGINT NOT NULL, tenant STRING NOT NULL",
    partition_by=("tenant",),
    keys=("id",),
    properties={"delta.deletedFileRetentionDuration": "interval 0 hours"},
)
KEPT = TableSpec(
    name="test/maintained_default_retention",
    schema="id BIGINT NOT NULL",
    keys=("id",),
)


def _small_files(spark, root, spec, loads: int, cols: str) -> None:
    for n in range(loads):
        df = spark.range(n * 10, n * 10 + 10, numPartitions=2).selectExpr(*cols.split(";"))
        append(spark, root, spec, df)


def test_maintenance_compacts_vacuums_and_checkpoints(spark, warehouse_root):
    _small_files(spark, warehouse_root, SMALL, 6, "id;'acme' AS tenant")
    before = sorted(r.id for r in read_table(spark, warehouse_root, SMALL).collect())

    report = maintain(spark, warehouse_root, SMALL)

    assert report.files_before == 12 and report.files_after == 1
    assert report.files_compacted == 12 and report.files_written == 1
    assert report.files_vacuumed == 12  # retention 0 h, as the table declares
    location = Path(SMALL.location(warehouse_root).removeprefix("file:"))
    data_files = list((location / "tenant=acme").glob("*.parquet"))
    assert len(data_files) == 1
    log = location / "_delta_log"
    assert (log / f"{report.checkpoint_version:020d}.checkpoint.parquet").exists()
    after = sorted(r.id for r in read_table(spark, warehouse_root, SMALL).collect())
    assert after == before
    assert RustTable(str(location)).count() == len(before)


def test_vacuum_keeps_files_younger_than_the_default_retention(spark, warehouse_root):
    _small_files(spark, warehouse_root, KEPT, 3, "id")

    report = maintain(spark, warehouse_root, KEPT)

    assert report.files_compacted == 6 and report.files_after == 1
    assert report.files_vacuumed == 0  # replaced files stay for 7 days: readers of old versions
    location = Path(KEPT.location(warehouse_root).removeprefix("file:"))
    assert len(list(location.glob("*.parquet"))) == 7


def test_maintenance_job_runs_per_table_and_logs_its_figures(spark, tmp_path):
    from edgebatch.framework.planning import plan_partitions
    from edgebatch.framework.registry import discover
    from edgebatch.framework.requests import RunRequest
    from edgebatch.framework.runner import Runner
    from edgebatch.framework.state import RunState, StateStore
    from edgebatch.settings import Settings, StateSettings, WarehouseSettings
    from edgebatch.warehouse.uri import WarehouseRoot

    home = tmp_path / "home"
    home.mkdir()
    settings = Settings(
        home=home,
        warehouse=WarehouseSettings(root=(home / "warehouse").as_uri()),
        state=StateSettings(url=f"sqlite:///{home / 'state.db'}"),
    )
    root = WarehouseRoot.parse(settings.warehouse_root)
    _small_files(spark, root, SMALL, 3, "id;'acme' AS tenant")
    store = StateStore(settings.state_url)
    registry = discover(settings)
    runner = Runner(spark, store, settings, registry)
    try:
        run = runner.run(RunRequest("maintenance", partitions=(SMALL.name,)))
    finally:
        runner.close()
    assert run.state == RunState.SUCCEEDED, run.error
    (iteration,) = store.list_iterations(run.id)
    assert iteration.partition_key.startswith(f"{SMALL.name}@")
    lines = [line.message for line in store.read_logs(run.id)]
    figures = [json.loads(m.split("figures ", 1)[1]) for m in lines if "figures" in m]
    assert figures and figures[0]["table"] == SMALL.name
    assert figures[0]["files_before"] == 6 and figures[0]["files_after"] == 1
    # An incremental run the same day maintains every declared table but the one done.
    loaded = store.loaded_partitions("maintenance")
    due = plan_partitions(registry.get("maintenance"), RunRequest("maintenance"), loaded=loaded)
    assert iteration.partition_key not in due.to_run
    assert any(key.startswith("bronze/edge_batches@") for key in due.to_run)
    store.close()
