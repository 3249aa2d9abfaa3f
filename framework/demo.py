"""`edgebatch demo`: the main path end to end on the embedded defaults, then where to look."""

from __future__ import annotations

import datetime as dt

from edgebatch.settings import load_settings


def run_demo(config: str | None = None) -> int:
    from pyspark.sql import Row

    from edgebatch.framework.session import build_session
    from edgebatch.warehouse.tables import TableSpec, append, read_table
    from edgebatch.warehouse.uri import WarehouseRoot

    settings = load_settings(config)
    root = WarehouseRoot.parse(settings.warehouse_root)
    spark = build_session(settings)
    spark.sparkContext.setLogLevel("ERROR")
    spec = TableSpec(
        name="demo/hello",
        schema="tenant STRING NOT NULL, device STRING NOT NULL, liters DOUBLE, date DATE NOT NULL",
        partition_by=("tenant",),
    )
    today = dt.datetime.now(dt.UTC).date()
    rows = [Row(tenant="acme", device=f"meter-{i}", liters=10.0 * i, date=today) for i in range(3)]
    append(spark, root, spec, spark.createDataFrame(rows, spec.struct()))
    table = read_table(spark, root, spec)
    table.orderBy("device").show(truncate=False)
    version = spark.sql(f"DESCRIBE HISTORY delta.`{spec.location(root)}`").first().version
    print(f"Delta table: {spec.location(root)} (version {version}, {table.count()} rows)")
    print(f"Warehouse root: {root.uri()}")
    return 0
