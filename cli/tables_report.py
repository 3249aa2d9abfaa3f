"""`edgebatch tables`: every declared table, where it lives, and what it holds now.

Declared means in the table registry once the contract's tables and every discovered
job are imported (a job module declares the tables it writes), plus any output a job
names without declaring it. Read from the Delta logs without Spark (see
`edgebatch.warehouse.inventory`), so it answers at once and prints nothing of a JVM.
"""

from __future__ import annotations

from edgebatch.settings import Settings, load_settings


def declared_table_names(settings: Settings) -> dict[str, list[str]]:
    """Every table name the project knows, with the jobs that write it."""
    from edgebatch.framework.declared import declared_table_names as declared
    from edgebatch.framework.registry import discover

    return declared(discover(settings))


def print_tables(config: str | None = None) -> int:
    from edgebatch.warehouse.inventory import table_state
    from edgebatch.warehouse.tables import REGISTRY
    from edgebatch.warehouse.uri import WarehouseRoot

    settings = load_settings(config)
    root = WarehouseRoot.parse(settings.warehouse_root)
    for name, writers in declared_table_names(settings).items():
        if name in REGISTRY:
            state = table_state(root, REGISTRY.get(name))
            shown, location = state.describe(), state.location
        else:
            shown, location = "not declared in the table registry", ""
        by = ", ".join(writers) or "-"
        print(f"{name:24} {shown:40} {by:16} {location}".rstrip())
    return 0
