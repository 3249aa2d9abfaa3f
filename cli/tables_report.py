"""`edgebatch tables`: what is declared, where it lives, and what it holds now."""

from __future__ import annotations

from edgebatch.settings import load_settings


def print_tables(config: str | None = None) -> int:
    from delta.tables import DeltaTable

    from edgebatch.framework.session import build_session
    from edgebatch.warehouse import catalog  # noqa: F401  (declares the tables)
    from edgebatch.warehouse.tables import REGISTRY
    from edgebatch.warehouse.uri import WarehouseRoot

    settings = load_settings(config)
    root = WarehouseRoot.parse(settings.warehouse_root)
    spark = build_session(settings)
    spark.sparkContext.setLogLevel("ERROR")
    for spec in REGISTRY:
        location = spec.location(root)
        if DeltaTable.isDeltaTable(spark, location):
            version = DeltaTable.forPath(spark, location).history(1).first().version
            rows = spark.read.format("delta").load(location).count()
            state = f"version {version}, {rows} rows"
        else:
            state = "not created yet"
        print(f"{spec.name:28} {state:28} {location}")
    return 0
